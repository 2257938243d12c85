#!/usr/bin/env bash
# catch_discover_tests splits a test name at ';' (CMake's list separator) into ctest entries
# that run nothing, silently: no test name may contain one.
set -euo pipefail
cd "$(dirname "$0")"
bad=$(grep -rPzo --include='*.cc' 'TEST_CASE\(\s*("[^"]*"\s*)+' . | tr '\0' '\n' | grep ';' || true)
if [ -n "$bad" ]; then
  echo "test names with ';' (use ' - '):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "test names ok"
