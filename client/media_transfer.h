// Uploading and downloading media over a ChatClient, with resume and progress.
//
// Upload: begin (size, type, sha256) -> chunks, a few in flight, each acknowledged with how
// far the server got -> the last ack says done and carries the ticket for the MediaRef. On a
// retryable error (media store down, link lost) it asks upload_status and goes on from there,
// a bounded number of times; the upload can also be resumed later by id (ResumeUpload).
// Events that are not about the transfer (pushes, receipts...) are kept in `other`.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "client/chat_client.h"

namespace meshchat::client {

using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct TransferOptions {
  int timeout_ms = 15000;  // for each answer
  int retries = 5;         // retryable failures tolerated (with backoff) before giving up
  size_t window = 4;       // chunks (upload) or ranges (fetch) in flight
  ProgressFn progress;
  std::vector<Event>* other = nullptr;
};

std::string Sha256(std::string_view data);

// Uploads `content`; the returned reference goes into a message (ChatClient::SendWithMedia).
Result<codec::MediaRef> UploadMedia(ChatClient& c, std::string_view content,
                                    const std::string& type, const TransferOptions& o = {});
// Continues an interrupted upload of `content` under `id` (from an earlier begin).
Result<codec::MediaRef> ResumeUpload(ChatClient& c, const std::string& id, std::string_view content,
                                     const TransferOptions& o = {});
// How far the server got with an upload of ours.
Result<codec::UploadState> QueryUpload(ChatClient& c, const std::string& id, int timeout_ms = 5000);
// Downloads all of a media item (checks size and sha256).
Result<std::string> FetchMedia(ChatClient& c, const codec::MediaRef& ref,
                               const TransferOptions& o = {});
// A signed, expiring HTTP URL for the media.
Result<codec::MediaLink> RequestMediaLink(ChatClient& c, const codec::MediaRef& ref,
                                          uint64_t ttl_s = 0, int timeout_ms = 5000);

}  // namespace meshchat::client
