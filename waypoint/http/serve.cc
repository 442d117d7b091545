#include "waypoint/http/internal.h"

namespace zm::waypoint {

void ServeHttp(std::unique_ptr<hbone::ByteStream> downstream, UpstreamOpener open,
               std::shared_ptr<RequestFilter> filter, HttpOptions options,
               std::function<void(const RequestLog&)> on_request) {
  internal::ServeArgs args;
  args.down = std::move(downstream);
  args.open = std::move(open);
  args.filter = std::move(filter);
  args.options = options;
  args.on_request = std::move(on_request);
  args.conn_id = internal::NextConnId();
  // The HTTP/1 engine reads first; it hands the connection to the HTTP/2 engine when the
  // first bytes are the HTTP/2 connection preface.
  internal::ServeHttp1(std::move(args));
}

}  // namespace zm::waypoint
