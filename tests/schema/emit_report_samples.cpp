// Prints `rstwatch report` output for hand-made inputs that between them
// produce every report_* event type and every finding kind, so the schema
// test validates the report formatter as it does the trace formatter.
#include <iostream>

#include "../unit/report_fixtures.hpp"
#include "report/format.hpp"

using namespace rstwatch;

namespace {

void emit(const std::string &input, std::optional<std::chrono::milliseconds> configured = {}) {
    std::string out;
    format_report_json(rf::run(input, configured), "schema-host", 1795550761123456789LL, out);
    std::cout << out;
}

} // namespace

int main() {
    // Two hosts, the client's RST inferred to come from a middlebox, one end
    // fixed, a damaged line: middlebox_idle_timeout, one_side_keepalive, a pair.
    rf::Reset client;
    client.host = "app-1";
    client.origin = "unknown";
    client.idle_ms = 351'500;
    rf::Sock server;
    server.host = "db-1";
    server.process = {501, "postgres"};
    server.local = {"10.0.0.2", 5432};
    server.remote = {"10.0.0.1", 40000};
    server.keepalive = {true, 60};
    rf::Reset scan;
    scan.process = {};
    scan.keepalive.reset();
    scan.idle_ms = -1;
    scan.sent = true;
    scan.verdict = "no_socket";
    scan.origin = "local";
    scan.local.port = 22;
    const std::string lab = rf::reset(client) + rf::audit(server) + rf::reset(scan) +
                            rf::summary("db-1", 9, {501, "postgres"}, 40, 3) +
                            rf::head("lost", "app-1", 5) +
                            R"(,"reason":"ringbuf_full","lost":2,"total":2,"by_type":{}})"
                            "\n" +
                            rf::head("mystery", "app-1", 6) + "}\n" + "{\"v\":1,\"event\":\n";
    emit(lab);
    emit(lab, std::chrono::seconds(350));

    // Deaths of busy connections: deaths_not_clustered; a truncated gzip input.
    std::string busy;
    for (int i = 0; i < 5; ++i) {
        rf::Reset r;
        r.local.port = 30000 + i;
        r.idle_ms = 10 * (i + 1);
        busy += rf::reset(r);
    }
    std::string gz = rf::gzip(busy + busy + busy);
    gz.resize(gz.size() - 6);
    emit(gz);
    return 0;
}
