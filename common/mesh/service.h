#pragma once
// Services in the mesh model (DESIGN §2): a Service's VIPs and ports, and its endpoints, the
// workloads it selects (same namespace, labels ⊇ selector), as the Kubernetes endpoints
// controller would list them.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/ip.h"

namespace zm::mesh {

struct ServicePort {
  std::string name;
  uint16_t port = 0;             // the Service port (what clients dial on a VIP)
  uint16_t target_port = 0;      // numeric targetPort; 0 when the targetPort is a name
  std::string target_port_name;  // named targetPort, resolved per endpoint; else empty
  std::string protocol = "TCP";  // TCP, UDP or SCTP
  std::string app_protocol;
};

// One workload behind a Service.
struct ServiceEndpoint {
  std::string workload_uid;
  std::string workload;  // "ns/name"
  std::vector<IpAddr> ips;
  // The workload port serving each Service port, index for index with Service::ports. 0 when
  // it serves none: a named targetPort the workload's containers do not declare (with that
  // protocol); Kubernetes leaves such a pod out of that port's endpoints.
  std::vector<uint16_t> target_ports;
};

struct Service {
  std::string name;
  std::string ns;
  std::string type = "ClusterIP";
  std::vector<IpAddr> vips;  // spec.clusterIP(s); empty for headless and ExternalName Services
  std::vector<ServicePort> ports;
  std::map<std::string, std::string> selector;  // empty: no endpoints derived
  std::vector<ServiceEndpoint> endpoints;       // sorted by workload ("ns/name")
  std::string source;

  // "ns/name"
  std::string key() const { return ns + "/" + name; }
  // The port entry for a Service port and protocol, or nullptr.
  const ServicePort* FindPort(uint16_t port, std::string_view protocol = "TCP") const;
  // The endpoint of a workload (by uid), or nullptr.
  const ServiceEndpoint* FindEndpoint(std::string_view workload_uid) const;
};

}  // namespace zm::mesh
