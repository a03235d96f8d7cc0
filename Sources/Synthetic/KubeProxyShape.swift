import IPAddr
import KubeModel

/// Renders the rule set kube-proxy v1.36's nftables mode would send for a synthetic cluster, as
/// `nft -f` text: the benchmark baseline. One chain per service port whose endpoint choice is an
/// inline anonymous `numgen … map` DNAT map; `service-ips`/`service-nodeports` verdict maps;
/// `external-…` chains for NodePort and LoadBalancer services. IPv4 only.
public enum KubeProxyShape {
  public static func render(_ state: ClusterState, clusterCIDR: String) -> String {
    var out = "table ip kube-proxy {\n"
    out += "\tset cluster-ips {\n\t\ttype ipv4_addr\n\t}\n"
    out += "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t}\n"
    out += "\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t}\n"
    out += "\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | 0x4000\n\t}\n"
    out += "\tchain masquerading {\n\t\tmeta mark & 0x4000 == 0 return\n"
    out += "\t\tmeta mark set meta mark ^ 0x4000\n\t\tmasquerade fully-random\n\t}\n"
    out += "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
    out += "\t\tfib daddr type local meta l4proto . th dport vmap @service-nodeports\n\t}\n"
    out += "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    out += "\t\tjump services\n\t}\n"
    out += "\tchain nat-output {\n\t\ttype nat hook output priority dstnat; policy accept;\n"
    out += "\t\tjump services\n\t}\n"
    out += "\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    out += "\t\tjump masquerading\n\t}\n"
    out += "\tchain cluster-ips-check {\n\t\tip daddr @cluster-ips reject\n\t}\n"
    out += "\tchain filter-forward {\n\t\ttype filter hook forward priority -110; policy accept;\n"
    out += "\t\tct state new jump cluster-ips-check\n\t}\n"
    out += "}\n"

    var slices: [String: EndpointSlice] = [:]
    for s in state.endpointSlices where s.addressType == "IPv4" {
      if let k = s.serviceKey { slices[k] = s }
    }
    var elements = ""
    var cipElements = ""
    var nodePortElements = ""
    var chains = ""
    for svc in state.services {
      guard let cip = svc.spec.clusterIP, let port = svc.spec.ports?.first,
        let slice = slices[svc.key]
      else { continue }
      let base = "\(svc.key)/tcp/\(port.name ?? String(port.port))"
      let hash = shortHash(base)
      let chain = "service-\(hash)-\(base)"
      let eps = (slice.endpoints ?? []).compactMap { $0.addresses.first }
      let target = slice.ports?.first?.port ?? 0
      chains += "add chain ip kube-proxy \(chain)\n"
      chains +=
        "add rule ip kube-proxy \(chain) ip daddr \(cip) tcp dport \(port.port) ip saddr != \(clusterCIDR) jump mark-for-masquerade\n"
      var map = ""
      for (i, ip) in eps.enumerated() {
        map += (i == 0 ? "" : ", ") + "\(i) : \(ip) . \(target)"
      }
      chains +=
        "add rule ip kube-proxy \(chain) meta l4proto tcp dnat ip to numgen random mod \(eps.count) map { \(map) }\n"
      cipElements += "add element ip kube-proxy cluster-ips { \(cip) }\n"
      elements += "add element ip kube-proxy service-ips { \(cip) . tcp . \(port.port) : goto \(chain) }\n"
      let lbIPs = (svc.status?.loadBalancer?.ingress ?? []).compactMap(\.ip)
      if port.nodePort != nil || !lbIPs.isEmpty {
        let ext = "external-\(hash)-\(base)"
        chains += "add chain ip kube-proxy \(ext)\n"
        chains += "add rule ip kube-proxy \(ext) jump mark-for-masquerade\n"
        chains += "add rule ip kube-proxy \(ext) goto \(chain)\n"
        if let np = port.nodePort {
          nodePortElements += "add element ip kube-proxy service-nodeports { tcp . \(np) : goto \(ext) }\n"
        }
        for ing in svc.status?.loadBalancer?.ingress ?? [] {
          if let ip = ing.ip {
            elements += "add element ip kube-proxy service-ips { \(ip) . tcp . \(port.port) : goto \(ext) }\n"
          }
        }
      }
    }
    return out + chains + cipElements + elements + nodePortElements
  }

  static func shortHash(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    let text = String(h & 0xFFFF_FFFF_FF, radix: 36, uppercase: true)
    return String(repeating: "0", count: max(0, 8 - text.count)) + text.suffix(8)
  }
}
