#include "common/hbone/client_session.h"

#include <charconv>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::hbone {

std::shared_ptr<HboneClientSession> HboneClientSession::Create(std::unique_ptr<Transport> transport,
                                                               SessionOptions options) {
  return std::make_shared<HboneClientSession>(std::move(transport), options);
}

HboneClientSession::HboneClientSession(std::unique_ptr<Transport> transport, SessionOptions options)
    : SessionBase(std::move(transport), options, /*server=*/false) {}

size_t HboneClientSession::available_streams() const {
  if (!usable() || streams_.size() >= options_.max_concurrent_streams) return 0;
  return options_.max_concurrent_streams - streams_.size();
}

void HboneClientSession::OpenStream(std::string authority, std::vector<Header> headers,
                                    OpenCallback cb) {
  std::vector<Header> all = {{":method", "CONNECT"}, {":authority", std::move(authority)}};
  for (auto& h : headers) all.push_back(std::move(h));
  OpenRequest(std::move(all), std::move(cb));
}

void HboneClientSession::OpenRequest(std::vector<Header> headers, OpenCallback cb) {
  auto self = std::static_pointer_cast<HboneClientSession>(shared_from_this());
  asio::dispatch(executor(), [self, headers = std::move(headers), cb = std::move(cb)]() mutable {
    auto fail = [&](const absl::Status& s) {
      asio::post(self->executor(), [cb = std::move(cb), s] { cb(s, nullptr); });
    };
    if (self->closed()) return fail(absl::UnavailableError("HBONE session closed"));
    if (self->goaway_received()) return fail(absl::UnavailableError("HBONE session got GOAWAY"));
    if (self->streams_.size() >= self->options_.max_concurrent_streams) {
      return fail(absl::ResourceExhaustedError("HBONE session has too many streams"));
    }
    std::vector<nghttp2_nv> nva;
    for (auto& h : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(h.name.data()),
                     reinterpret_cast<uint8_t*>(h.value.data()), h.name.size(), h.value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    auto st = self->NewStream();
    nghttp2_data_provider dp = self->DataProvider(st.get());
    int32_t id =
        nghttp2_submit_request(self->session_, nullptr, nva.data(), nva.size(), &dp, nullptr);
    if (id < 0) {
      return fail(absl::UnavailableError(StrCat("nghttp2_submit_request: ", nghttp2_strerror(id))));
    }
    st->id_ = id;
    st->open_cb_ = std::move(cb);
    self->streams_[id] = st;
    self->counters_.streams_opened++;
    self->SendPending();
  });
}

void HboneClientSession::OnHeadersComplete(const std::shared_ptr<HboneStream>& st,
                                           const nghttp2_frame*) {
  if (!st->open_cb_) return;  // trailers or a second response: ignore
  int status = 0;
  for (const auto& h : st->headers_) {
    if (h.name != ":status") continue;
    auto [p, ec] = std::from_chars(h.value.data(), h.value.data() + h.value.size(), status);
    if (ec != std::errc() || p != h.value.data() + h.value.size()) status = 0;
  }
  st->headers_.clear();
  if (status >= 100 && status < 200) return;  // interim response
  auto cb = std::exchange(st->open_cb_, nullptr);
  st->status_ = status;
  if (status == 200) {
    asio::post(executor(), [cb = std::move(cb), st] { cb(200, st); });
    return;
  }
  Log("hbone").debug("conn={} stream={} CONNECT answered {}", id_, st->id_, status);
  if (status == 0) {
    asio::post(executor(), [cb = std::move(cb)] {
      cb(absl::InternalError("HBONE response without a valid :status"), nullptr);
    });
  } else {
    asio::post(executor(), [cb = std::move(cb), status] { cb(status, nullptr); });
  }
  ResetStream(st, NGHTTP2_CANCEL, "rejected", StrCat("status ", status));
}

void HboneClientSession::OnStreamGone(const std::shared_ptr<HboneStream>& st,
                                      const std::string& why) {
  auto cb = std::exchange(st->open_cb_, nullptr);
  if (!cb) return;
  asio::post(executor(), [cb = std::move(cb), why] {
    cb(absl::UnavailableError(StrCat("HBONE stream ended before a response: ", why)), nullptr);
  });
}

}  // namespace zm::hbone
