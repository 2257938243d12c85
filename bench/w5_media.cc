#include "bench/w5_media.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include "bench/mesh_info.h"
#include "client/media_transfer.h"
#include "codec/token.h"

namespace meshchat::bench {

namespace {
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Result<client::ChatClient> Join(const MeshInfo& m, size_t gateway, const std::string& user) {
  const auto& [host, port] = m.gateways[gateway % m.gateways.size()];
  codec::TokenClaims c{user, "bench", static_cast<int64_t>(time(nullptr)) + 3600, 1};
  return client::ChatClient::Connect({host, static_cast<uint16_t>(port), m.tls, {m.ca_file}},
                                     codec::SignToken(c, m.secret));
}
}  // namespace

int RunW5(const std::string& var, const W5Options& o) {
  MeshInfo m;
  if (!LoadMesh(var, m)) return 2;
  std::random_device rd;
  const std::string run = std::to_string(rd() % 1000000);
  auto up = Join(m, 0, "w5up" + run);
  auto down = Join(m, 1, "w5down" + run);
  if (!up.ok() || !down.ok()) {
    std::cerr << "w5: cannot connect: " << (up.ok() ? down.status() : up.status()).message()
              << "\n";
    return 2;
  }
  std::mt19937 rng(7);
  std::string data(o.bytes, '\0');
  std::vector<double> up_mbps, fetch_mbps, handoff_s;
  for (size_t i = 0; i < o.files; ++i) {
    for (auto& ch : data) ch = static_cast<char>(rng());
    const auto t0 = Clock::now();
    auto ref = client::UploadMedia(*up, data, "image/jpeg");
    const auto t1 = Clock::now();
    if (!ref.ok()) {
      std::cerr << "w5: upload failed: " << ref.status().message() << "\n";
      return 1;
    }
    if (!up->SendWithMedia(down->welcome().user, "w5", *ref).ok()) return 1;
    std::optional<codec::MediaRef> got;
    while (!got) {
      auto ev = down->Next(10000);
      if (!ev.ok()) {
        std::cerr << "w5: no message: " << ev.status().message() << "\n";
        return 1;
      }
      if (auto* p = std::get_if<codec::Push>(&*ev); p && p->media) got = p->media;
    }
    const auto t2 = Clock::now();
    auto bytes = client::FetchMedia(*down, *got);
    const auto t3 = Clock::now();
    if (!bytes.ok() || *bytes != data) {
      std::cerr << "w5: fetch failed or differs\n";
      return 1;
    }
    const double mb = static_cast<double>(o.bytes) / (1 << 20);
    up_mbps.push_back(mb / Seconds(t0, t1));
    fetch_mbps.push_back(mb / Seconds(t2, t3));
    handoff_s.push_back(Seconds(t1, t3));
  }
  std::printf(
      "result workload=w5 files=%zu bytes=%zu upload_mib_s_median=%.1f fetch_mib_s_median=%.1f "
      "upload_to_fetched_ms_median=%.0f\n",
      o.files, o.bytes, Median(up_mbps), Median(fetch_mbps), Median(handoff_s) * 1000);
  return 0;
}

}  // namespace meshchat::bench
