#include "bpf_objects.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace rwtest {

namespace {

std::set<unsigned> ids_from(const std::string &cmd) {
    std::set<unsigned> out;
    json j = json::parse(sh(cmd), nullptr, false);
    if (j.is_array())
        for (auto &o : j)
            if (o.contains("id")) out.insert(o["id"].get<unsigned>());
    return out;
}

std::set<unsigned> intersect(const std::set<unsigned> &a, const std::set<unsigned> &b) {
    std::set<unsigned> out;
    for (unsigned x : a)
        if (b.count(x)) out.insert(x);
    return out;
}

} // namespace

std::ostream &operator<<(std::ostream &os, const BpfIds &ids) {
    auto list = [&](const char *what, const std::set<unsigned> &s) {
        os << what << "[";
        for (unsigned x : s)
            os << " " << x;
        os << " ] ";
    };
    list("progs", ids.progs);
    list("maps", ids.maps);
    list("links", ids.links);
    list("btfs", ids.btfs);
    return os;
}

BpfIds bpf_ids_held_by(pid_t pid) {
    BpfIds ids;
    std::error_code ec;
    for (const auto &e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", ec)) {
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line)) {
            auto value = [&](std::size_t n) { return unsigned(std::stoul(line.substr(n))); };
            if (line.rfind("prog_id:", 0) == 0) ids.progs.insert(value(8));
            if (line.rfind("map_id:", 0) == 0) ids.maps.insert(value(7));
            if (line.rfind("link_id:", 0) == 0) ids.links.insert(value(8));
            if (line.rfind("btf_id:", 0) == 0) ids.btfs.insert(value(7));
        }
    }
    return ids;
}

BpfIds bpf_ids_live() {
    BpfIds ids;
    ids.progs = ids_from("bpftool prog show -j");
    ids.maps = ids_from("bpftool map show -j");
    ids.links = ids_from("bpftool link show -j");
    ids.btfs = ids_from("bpftool btf show -j");
    return ids;
}

BpfIds bpf_ids_alive(const BpfIds &ids) {
    BpfIds live = bpf_ids_live(), out;
    out.progs = intersect(ids.progs, live.progs);
    out.maps = intersect(ids.maps, live.maps);
    out.links = intersect(ids.links, live.links);
    out.btfs = intersect(ids.btfs, live.btfs);
    return out;
}

BpfIds wait_until_released(const BpfIds &ids, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        BpfIds alive = bpf_ids_alive(ids);
        if (alive.empty() || std::chrono::steady_clock::now() >= deadline) return alive;
        usleep(100000);
    }
}

std::set<std::string> bpf_prog_names(const BpfIds &ids) {
    std::set<std::string> names;
    for (unsigned id : ids.progs) {
        json j =
            json::parse(sh("bpftool prog show id " + std::to_string(id) + " -j"), nullptr, false);
        if (j.is_object() && j.contains("name")) names.insert(j["name"].get<std::string>());
    }
    return names;
}

std::vector<std::string> pinned_paths_of(const BpfIds &ids) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator("/sys/fs/bpf", ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const std::string p = it->path().string();
        for (const char *kind : {"prog", "map", "link"}) {
            FILE *f =
                popen(("bpftool " + std::string(kind) + " show pinned '" + p + "' -j 2>/dev/null")
                          .c_str(),
                      "r");
            if (!f) continue;
            std::string text;
            char buf[4096];
            std::size_t n;
            while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                text.append(buf, n);
            pclose(f);
            json j = json::parse(text, nullptr, false);
            if (!j.is_object() || !j.contains("id")) continue;
            unsigned id = j["id"].get<unsigned>();
            const auto &set = kind[0] == 'p' ? ids.progs : kind[0] == 'm' ? ids.maps : ids.links;
            if (set.count(id)) out.push_back(p);
        }
    }
    return out;
}

std::string helper_bin(const std::string &name) {
    return std::string(RW_HELPER_DIR) + "/" + name;
}

} // namespace rwtest
