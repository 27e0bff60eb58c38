using Vessel.Api;
using Vessel.Engine.Containers;
using Vessel.Images.Oci;

namespace Vessel.Engine.Tests;

public sealed class ContainerSpecTests
{
    private const string Passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home:/bin/sh\n";
    private const string Group = "root:x:0:\nuser:x:1000:\nwheel:x:10:user\n";

    [Fact]
    public void ArgsFollowDockerRules()
    {
        var image = new ContainerConfig { Entrypoint = ["/entry"], Cmd = ["a", "b"] };
        Assert.Equal(["/entry", "a", "b"], ContainerSpec.Args(new ContainerCreateRequest { Image = "x" }, image));
        Assert.Equal(["/entry", "c"], ContainerSpec.Args(new ContainerCreateRequest { Image = "x", Cmd = ["c"] }, image));
        Assert.Equal(["/other"], ContainerSpec.Args(new ContainerCreateRequest { Image = "x", Entrypoint = ["/other"] }, image));
        Assert.Throws<EngineException>(() => ContainerSpec.Args(new ContainerCreateRequest { Image = "x" }, new ContainerConfig()));
    }

    [Fact]
    public void EnvMergesAndDefaultsPath()
    {
        var env = ContainerSpec.Env(new ContainerCreateRequest { Image = "x", Env = ["A=2", "B=3"] }, new ContainerConfig { Env = ["A=1"] }, "h");
        Assert.Equal([ContainerSpec.DefaultPath, "HOSTNAME=h", "A=2", "B=3"], env);
    }

    [Fact]
    public void CapabilitiesAddDropAll()
    {
        Assert.Equal(14, ContainerSpec.Capabilities(new ContainerCreateRequest { Image = "x" }).Count);
        var c = ContainerSpec.Capabilities(new ContainerCreateRequest { Image = "x", CapAdd = ["sys_admin"], CapDrop = ["CAP_NET_RAW"] });
        Assert.Contains("CAP_SYS_ADMIN", c);
        Assert.DoesNotContain("CAP_NET_RAW", c);
        Assert.Equal(["CAP_KILL"], ContainerSpec.Capabilities(new ContainerCreateRequest { Image = "x", CapAdd = ["kill"], CapDrop = ["ALL"] }));
        Assert.Throws<EngineException>(() => ContainerSpec.Capabilities(new ContainerCreateRequest { Image = "x", CapAdd = ["nope"] }));
    }

    [Fact]
    public void UsersResolveFromTheImage()
    {
        Assert.Equal((1000u, 1000u), Ids(ContainerSpec.ResolveUser("user", Passwd, Group)));
        Assert.Equal([10u], ContainerSpec.ResolveUser("user", Passwd, Group).Groups);
        Assert.Equal((1000u, 10u), Ids(ContainerSpec.ResolveUser("1000:wheel", Passwd, Group)));
        Assert.Equal((42u, 0u), Ids(ContainerSpec.ResolveUser("42", Passwd, Group)));
        Assert.Equal((0u, 0u), Ids(ContainerSpec.ResolveUser(null, null, null)));
        Assert.Throws<EngineException>(() => ContainerSpec.ResolveUser("ghost", Passwd, Group));
    }

    private static (uint, uint) Ids((uint Uid, uint Gid, List<uint> Groups) u) => (u.Uid, u.Gid);

    [Fact]
    public void SpecHasDockerDefaultsAndFlags()
    {
        var req = new ContainerCreateRequest { Image = "x", Cmd = ["sh"], Memory = 64 << 20, PidsLimit = 50, Cpus = 0.5, ReadOnly = true };
        var spec = ContainerSpec.Build("abc", req, new ContainerConfig(), "host", "/c/abc", Passwd, Group);
        Assert.Equal("/c/abc/rootfs", spec.Root!.Path);
        Assert.True(spec.Root.Readonly);
        Assert.Equal(64L << 20, spec.Linux!.Resources!.Memory!.Limit);
        Assert.Equal(50, spec.Linux.Resources.Pids!.Limit);
        Assert.Equal(50_000, spec.Linux.Resources.Cpu!.Quota);
        Assert.NotNull(spec.Linux.Seccomp);
        Assert.Contains("/proc/kcore", spec.Linux.MaskedPaths!);
        Assert.Contains(spec.Linux.Namespaces!, n => n.Type == "network" && n.Path is null);
        Assert.Contains(spec.Mounts!, m => m.Destination == "/etc/hosts" && m.Source == "/c/abc/hosts");
        Assert.Equal("/vessel/abc", spec.Linux.CgroupsPath);
        var privileged = ContainerSpec.Build("abc", req with { Privileged = true }, new ContainerConfig(), "host", "/c/abc", null, null);
        Assert.Null(privileged.Linux!.Seccomp);
        Assert.Null(privileged.Linux.MaskedPaths);
    }

    [Fact]
    public void LogTimesWithNanoseconds()
    {
        var t = ContainerService.ParseTime("2024-05-06T07:08:09.123456789Z");
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero).AddTicks(1234567), t);
    }
}
