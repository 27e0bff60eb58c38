using Vessel.Api;
using Vessel.Engine.Containers;
using Vessel.Engine.Volumes;
using Vessel.Images.Oci;

namespace Vessel.Engine.Tests;

/// <summary>docker's syntaxes for -v, --mount, --tmpfs, --restart, --security-opt and health durations.</summary>
public sealed class ContainerOptionTests
{
    [Fact]
    public void VolumeFlagFollowsDocker()
    {
        var anon = MountParser.ParseBind("/data/");
        Assert.Equal(("volume", null, "/data", false), (anon.Type, anon.Source, anon.Target, anon.ReadOnly));
        var named = MountParser.ParseBind("cache:/var/cache:ro,nocopy");
        Assert.Equal(("volume", "cache", "/var/cache", true, true), (named.Type, named.Source, named.Target, named.ReadOnly, named.NoCopy));
        var bind = MountParser.ParseBind("/srv/../srv/www:/usr/share/www:rw,rshared,z");
        Assert.Equal(("bind", "/srv/www", "/usr/share/www", false, "rshared", true), (bind.Type, bind.Source, bind.Target, bind.ReadOnly, bind.Propagation, bind.CreateSource));
        foreach (var bad in new[] { "/data:rw", "", "a:b:c:d", "v:/x:rw,ro", "v:/x:bogus", "v:relative", "v:/", "bad name!:/x", "v:/x:rshared", "/h:/x:nocopy" })
            Assert.Throws<EngineException>(() => MountParser.ParseBind(bad));
    }

    [Fact]
    public void MountFlagFollowsDocker()
    {
        var v = MountParser.ParseMount("source=data,target=/data,readonly,volume-label=a=b");
        Assert.Equal(("volume", "data", "/data", true), (v.Type, v.Source, v.Target, v.ReadOnly));
        Assert.Equal("b", v.VolumeLabels!["a"]);
        Assert.Null(MountParser.ParseMount("type=volume,dst=/x").Source);
        var b = MountParser.ParseMount("type=bind,src=/etc,dst=/host-etc,ro=true,bind-propagation=rslave");
        Assert.Equal(("bind", "/etc", "/host-etc", true, "rslave", false), (b.Type, b.Source, b.Target, b.ReadOnly, b.Propagation, b.CreateSource));
        var t = MountParser.ParseMount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770");
        Assert.Equal(["nosuid", "nodev", "noexec", "size=67108864", "mode=1770"], t.TmpfsOptions);
        Assert.False(MountParser.ParseMount("type=bind,source=/a,target=/b,readonly=false").ReadOnly);
        foreach (var bad in new[]
                 {
                     "type=bind,target=/x", "type=bind,source=rel,target=/x", "type=tmpfs,source=x,target=/x", "type=nfs,target=/x",
                     "source=v", "target=/x,bogus=1", "target", "type=volume,target=/x,tmpfs-size=1m", "type=tmpfs,target=/x,volume-nocopy",
                     "type=tmpfs,target=/x,tmpfs-mode=99", "type=volume,target=/x,readonly=maybe", "type=volume,target=/x,volume-driver=nfs",
                 })
            Assert.Throws<EngineException>(() => MountParser.ParseMount(bad));
    }

    [Fact]
    public void TmpfsFlagAndDuplicateTargets()
    {
        var t = MountParser.ParseTmpfs("/run:size=1m,exec,mode=755");
        Assert.Equal(["nosuid", "nodev", "noexec", "size=1048576", "exec", "mode=755"], t.TmpfsOptions);
        Assert.Throws<EngineException>(() => MountParser.ParseTmpfs("/run:bogus"));
        Assert.Throws<EngineException>(() => MountParser.ParseTmpfs("run"));
        var req = new ContainerCreateRequest { Image = "x", Binds = ["ab:/x"], Tmpfs = ["/x"] };
        Assert.Throws<EngineException>(() => ContainerMounts.Requests(req, null));
        // Image VOLUMEs not covered by the request become anonymous volumes.
        var image = new ContainerConfig { Volumes = new Dictionary<string, EmptyObject> { ["/data"] = new(), ["/x"] = new() } };
        var list = ContainerMounts.Requests(new ContainerCreateRequest { Image = "x", Binds = ["ab:/x"] }, image);
        Assert.Equal(["/x", "/data"], list.Select(m => m.Target));
        Assert.Null(list[1].Source);
    }

    [Fact]
    public void RestartPolicies()
    {
        Assert.Equal(RestartPolicy.No, RestartPolicy.Parse(null));
        Assert.Equal(new RestartPolicy("on-failure", 2), RestartPolicy.Parse("on-failure:2"));
        Assert.Equal(new RestartPolicy("on-failure", 0), RestartPolicy.Parse("on-failure"));
        Assert.Equal("unless-stopped", RestartPolicy.Parse("unless-stopped").Name);
        foreach (var bad in new[] { "sometimes", "always:3", "no:1", "on-failure:-1", "on-failure:x" })
            Assert.Throws<EngineException>(() => RestartPolicy.Parse(bad));
        var onFailure = RestartPolicy.Parse("on-failure:2");
        Assert.True(onFailure.ShouldRestart(1, false, 1));
        Assert.False(onFailure.ShouldRestart(1, false, 2));
        Assert.False(onFailure.ShouldRestart(0, false, 0));
        Assert.False(RestartPolicy.Parse("always").ShouldRestart(0, true, 0));
        Assert.True(RestartPolicy.Parse("always").RestartAtDaemonStart(0, true, 0));
        Assert.False(RestartPolicy.Parse("unless-stopped").RestartAtDaemonStart(0, true, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(100), RestartPolicy.NextBackoff(TimeSpan.Zero, TimeSpan.Zero));
        Assert.Equal(TimeSpan.FromMilliseconds(200), RestartPolicy.NextBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.FromMilliseconds(100), RestartPolicy.NextBackoff(TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(11)));
        Assert.Equal(TimeSpan.FromMinutes(1), RestartPolicy.NextBackoff(TimeSpan.FromSeconds(40), TimeSpan.Zero));
    }

    [Fact]
    public void SecurityOptions()
    {
        var s = Containers.SecurityOptions.Parse(["no-new-privileges", "seccomp=unconfined", "label=disable", "apparmor=unconfined"]);
        Assert.True(s.NoNewPrivileges);
        Assert.True(s.SeccompUnconfined);
        Assert.False(Containers.SecurityOptions.Parse(["no-new-privileges:false"]).NoNewPrivileges);
        Assert.True(Containers.SecurityOptions.Parse(["no-new-privileges=true"]).NoNewPrivileges);
        Assert.True(Containers.SecurityOptions.Parse(["systempaths=unconfined"]).SystemPathsUnconfined);
        foreach (var bad in new[] { "bogus", "no-new-privileges:maybe", "seccomp=", "systempaths=x" })
            Assert.Throws<EngineException>(() => Containers.SecurityOptions.Parse([bad]));

        const string profile = """
            {"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
             "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                         {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                         {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"excludes":{"caps":["CAP_SYS_ADMIN"]}},
                         {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}
            """;
        var p = Containers.SecurityOptions.FromDockerProfile(profile, ["CAP_CHOWN"]);
        Assert.Equal("SCMP_ACT_ERRNO", p.DefaultAction);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], p.Architectures);
        Assert.Equal(3, p.Syscalls!.Count); // mount needs CAP_SYS_ADMIN
        Assert.Equal(13u, p.Syscalls.Single(c => c.Names![0] == "mkdir").ErrnoRet);
        Assert.Equal(8ul, p.Syscalls.Single(c => c.Names![0] == "personality").Args![0].Value);
        Assert.Throws<EngineException>(() => Containers.SecurityOptions.FromDockerProfile("{nope", []));
        Assert.Throws<EngineException>(() => Containers.SecurityOptions.FromDockerProfile("{}", []));
    }

    [Fact]
    public void HealthDurationsAndDefaults()
    {
        Assert.Equal(TimeSpan.FromSeconds(90), HealthSettings.ParseDuration("1m30s"));
        Assert.Equal(TimeSpan.FromMilliseconds(500), HealthSettings.ParseDuration("500ms"));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), HealthSettings.ParseDuration("1.5s"));
        Assert.Equal(TimeSpan.FromHours(2), HealthSettings.ParseDuration("2h"));
        Assert.Equal(TimeSpan.FromMilliseconds(2), HealthSettings.ParseDuration("2000000ns"));
        Assert.Equal(TimeSpan.Zero, HealthSettings.ParseDuration("0"));
        foreach (var bad in new[] { "5", "1d", "-1s", "s", "1m30" })
            Assert.Throws<EngineException>(() => HealthSettings.ParseDuration(bad));

        Assert.Null(HealthSettings.Resolve(null, null));
        var image = new HealthConfig { Test = ["CMD", "true"], Interval = 5_000_000_000, Retries = 5 };
        Assert.Null(HealthSettings.Resolve(new ContainerHealthConfig { Test = ["NONE"] }, image));
        var h = HealthSettings.Resolve(new ContainerHealthConfig { Test = ["CMD-SHELL", "exit 0"], Timeout = "2s" }, image)!;
        Assert.Equal((TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), TimeSpan.Zero, 5), (h.Interval, h.Timeout, h.StartPeriod, h.Retries));
        Assert.Equal(["/bin/sh", "-c", "exit 0"], h.Command);
        var d = HealthSettings.Resolve(null, new HealthConfig { Test = ["CMD", "probe", "-x"] })!;
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), 3), (d.Interval, d.Timeout, d.Retries));
        Assert.Equal(["probe", "-x"], d.Command);
        Assert.Throws<EngineException>(() => HealthSettings.Resolve(new ContainerHealthConfig { Test = ["CMD-SHELL", "x"], Interval = "10us" }, null));
        Assert.Throws<EngineException>(() => HealthSettings.Resolve(new ContainerHealthConfig { Test = ["SHELL", "x"] }, null));
    }
}
