// The media node's HTTP endpoint: GET /media/<id>?u=&e=&n=&t=&s= serves the bytes of a signed,
// unexpired URL (from a media_link frame), with Range support, so a CDN or any HTTP client can
// fetch static media. Stateless: the signature covers id, user, expiry, size and type, so the
// HTTP thread needs only the secret and the blob store (whose reads are thread-safe), never
// the loop thread's state. Whatever is wrong (bad signature, expired, gone) is a plain 404.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/clock.h"
#include "store/blob_store.h"

namespace httplib {
class Server;
}

namespace meshchat::nodes {

class MediaHttpServer {
 public:
  // Listens on host:port; start-up only: throws if it cannot bind.
  MediaHttpServer(const std::string& host, uint16_t port, store::BlobStore& blobs,
                  std::string secret, std::string previous, const Clock& clock);
  ~MediaHttpServer();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace meshchat::nodes
