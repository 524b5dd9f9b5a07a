#include "proxy/cluster/expose.h"

#include "proxy/cluster/slot.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

// codec has no map header: only these replies write one.
void appendMapHeader(std::string* out, size_t pairs) {
  out->push_back('%');
  out->append(std::to_string(pairs));
  out->append("\r\n");
}

}  // namespace

void exposeSlots(std::string_view host, uint16_t port, std::string_view node_id, std::string* out,
                 bool resp3) {
  codec::appendArrayHeader(*out, 1);
  codec::appendArrayHeader(*out, 3);
  codec::appendInteger(*out, 0);
  codec::appendInteger(*out, kSlots - 1);
  codec::appendArrayHeader(*out, 4);
  codec::appendBulk(*out, host);
  codec::appendInteger(*out, port);
  codec::appendBulk(*out, node_id);
  out->append(resp3 ? "%0\r\n" : "*0\r\n");  // no hostname to announce
}

void exposeShards(std::string_view host, uint16_t port, std::string_view node_id, bool resp3,
                  std::string* out) {
  // A map in RESP3; its pairs flattened into an array in RESP2.
  auto open = [&](size_t pairs) {
    if (resp3) {
      appendMapHeader(out, pairs);
    } else {
      codec::appendArrayHeader(*out, 2 * pairs);
    }
  };
  codec::appendArrayHeader(*out, 1);
  open(2);
  codec::appendBulk(*out, "slots");
  codec::appendArrayHeader(*out, 2);
  codec::appendInteger(*out, 0);
  codec::appendInteger(*out, kSlots - 1);
  codec::appendBulk(*out, "nodes");
  codec::appendArrayHeader(*out, 1);
  open(7);
  codec::appendBulk(*out, "id");
  codec::appendBulk(*out, node_id);
  codec::appendBulk(*out, "port");
  codec::appendInteger(*out, port);
  codec::appendBulk(*out, "ip");
  codec::appendBulk(*out, host);
  codec::appendBulk(*out, "endpoint");
  codec::appendBulk(*out, host);
  codec::appendBulk(*out, "role");
  codec::appendBulk(*out, "master");
  codec::appendBulk(*out, "replication-offset");
  codec::appendInteger(*out, 0);
  codec::appendBulk(*out, "health");
  codec::appendBulk(*out, "online");
}

void exposeNodes(std::string_view host, uint16_t port, std::string_view node_id, std::string* out,
                 bool resp3) {
  // Redis writes the bus port as port + 10000 unless told otherwise; past 65535 there is none.
  const uint32_t bus = port + 10000u <= 65535u ? port + 10000u : 0u;
  std::string line;
  line.reserve(node_id.size() + host.size() + 64);
  line.append(node_id);
  line.push_back(' ');
  line.append(host);
  line.push_back(':');
  line.append(std::to_string(port));
  line.push_back('@');
  line.append(std::to_string(bus));
  line.append(" myself,master - 0 0 1 connected 0-");
  line.append(std::to_string(kSlots - 1));
  line.push_back('\n');
  if (!resp3) {
    codec::appendBulk(*out, line);
    return;
  }
  out->push_back('=');
  out->append(std::to_string(line.size() + 4));
  out->append("\r\ntxt:");
  out->append(line);
  out->append("\r\n");
}

}  // namespace corral::cluster
