// GroupCore: groups moving between group nodes when the group ring changes
// (nodes/shard/handover.h).
#include <spdlog/spdlog.h>

#include "nodes/group/group_core.h"

namespace meshchat::nodes {

// Every table of keyed group state (group_core.cc, group_retention.cc), with the place of the
// group id in its keys.
std::vector<HandoverTable> GroupTables() {
  return {{"gmeta"}, {"gmem"},  {"glog"},       {"gcur"},       {"gdedup"},
          {"gmode"}, {"ghist"}, {"gvanish", 8}, {"glog_exp", 8}};
}

Status GroupCore::HandleChannel(const std::string& from, std::string_view payload) {
  auto handled = handover_.OnPayload(from, payload);
  if (!handled.ok()) return handled.status();
  if (*handled) return Status::Ok();
  GroupCursor c;  // a group whose rows are not here (yet) waits: see Handover::ApplyNow
  if (DecodeRecord(payload, c) &&
      !handover_.ApplyNow(c.group, group_owner_(c.group) == cfg_.node_id))
    return handover_.Stash(payload);
  return HandleCursor(payload);
}

void GroupCore::StepHandover(Effects& fx) {
  if (!handover_.active()) return;
  auto ended = handover_.Step([&](std::string_view p) { return HandleCursor(p); }, fx);
  if (!ended.ok()) return Fail(ended.status());
  if (*ended) {  // the caches may describe groups that left, or miss rows that came
    members_.clear();
    modes_.clear();
  }
}

Status GroupCore::OnMapChanged(const MapChange& change, Effects& fx) {
  cfg_.epoch = change.epoch;
  auto began = handover_.TakeMap(change, fx);
  if (!began.ok() || !*began) return began.status();
  members_.clear();
  modes_.clear();
  trim_due_.clear();  // groups that stay get their next trim when their cursors move again
  StepHandover(fx);
  return Status::Ok();
}

}  // namespace meshchat::nodes
