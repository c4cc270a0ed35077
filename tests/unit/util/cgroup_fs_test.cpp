#include <gtest/gtest.h>

#include "util/cgroup_fs.hpp"

using namespace rstwatch;

namespace {
const std::string id64 = "4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
}

TEST(ContainerIds, Docker) {
    EXPECT_EQ(parse_container_ids("/system.slice/docker-" + id64 + ".scope").container_id, id64);
    EXPECT_EQ(parse_container_ids("/docker/" + id64).container_id, id64);
}

TEST(ContainerIds, ContainerdCrioPodman) {
    EXPECT_EQ(parse_container_ids("/system.slice/cri-containerd-" + id64 + ".scope").container_id,
              id64);
    EXPECT_EQ(parse_container_ids("/machine.slice/libpod-" + id64 + ".scope").container_id, id64);
    EXPECT_EQ(parse_container_ids("/crio-" + id64 + ".scope").container_id, id64);
}

TEST(ContainerIds, KubernetesSystemdDriver) {
    auto ids =
        parse_container_ids("/kubepods.slice/kubepods-burstable.slice/"
                            "kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/"
                            "cri-containerd-" +
                            id64 + ".scope");
    EXPECT_EQ(ids.container_id, id64);
    EXPECT_EQ(ids.pod_uid, "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d");
}

TEST(ContainerIds, KubernetesCgroupfsDriver) {
    auto ids =
        parse_container_ids("/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" + id64);
    EXPECT_EQ(ids.container_id, id64);
    EXPECT_EQ(ids.pod_uid, "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d");
}

TEST(ContainerIds, PlainHostPathsHaveNone) {
    for (const char *p : {"/", "/user.slice/user-0.slice/session-1.scope",
                          "/system.slice/ssh.service", "/docker-short.scope", "/podcast.slice"}) {
        auto ids = parse_container_ids(p);
        EXPECT_TRUE(ids.container_id.empty()) << p;
        EXPECT_TRUE(ids.pod_uid.empty()) << p;
    }
}

TEST(CgroupPath, FromProcPidCgroup) {
    EXPECT_EQ(cgroup_v2_path("12:pids:/user.slice\n0::/system.slice/app.service\n"),
              "/system.slice/app.service");
    EXPECT_EQ(cgroup_v2_path("0::/\n"), "/");
    EXPECT_EQ(cgroup_v2_path("3:cpu:/x\n"), "");
    EXPECT_EQ(cgroup_v2_path(""), "");
}
