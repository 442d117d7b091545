#include "common/mesh/service.h"

#include <algorithm>

namespace zm::mesh {

const ServicePort* Service::FindPort(uint16_t port, std::string_view protocol) const {
  for (const ServicePort& p : ports) {
    if (p.port == port && p.protocol == protocol) return &p;
  }
  return nullptr;
}

const ServiceEndpoint* Service::FindEndpoint(std::string_view workload_uid) const {
  for (const ServiceEndpoint& e : endpoints) {
    if (e.workload_uid == workload_uid) return &e;
  }
  return nullptr;
}

}  // namespace zm::mesh
