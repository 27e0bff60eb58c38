using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Bugs the OCI runtime-tools suite found in vessel-runc (docs/conformance.md), kept fixed here
/// because the suite itself is not part of this repository.</summary>
public sealed class ConformanceRegressionTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Seccomp_profile_without_close_range_still_starts()
    {
        // Without no_new_privs the filter is loaded before capabilities are dropped, so everything the
        // executor does afterwards must survive a profile that denies close_range.
        var b = NewBundle("true");
        b.Process["noNewPrivileges"] = false;
        b.Linux["seccomp"] = JsonNode.Parse("""
            { "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [ { "names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 } ] }
            """);
        Run(b).Ok();
    }

    [Fact]
    public void Unknown_capability_is_an_error_naming_the_field()
    {
        var b = NewBundle("true");
        b.Process["capabilities"]!["bounding"]!.AsArray().Add("CAP_TEST");
        Run(b).FailsWith(1, "process.capabilities.bounding", "CAP_TEST");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Failing_poststart_hook_warns_and_the_others_run()
    {
        var dir = NewTempDir("poststart");
        var marker = Path.Combine(dir, "second-hook-ran");
        var b = NewBundle("true");
        b.Config["hooks"] = new JsonObject
        {
            ["poststart"] = new JsonArray(
                new JsonObject { ["path"] = "/bin/false" },
                new JsonObject { ["path"] = "/bin/sh", ["args"] = Bundle.Strings(["sh", "-c", $"touch {marker}"]) }),
        };
        Run(b).Ok();
        Assert.True(File.Exists(marker), "the poststart hook after the failing one ran");
    }

    [Fact]
    public void Failing_poststop_hook_does_not_stop_delete()
    {
        var b = NewBundle("true");
        b.Config["hooks"] = new JsonObject { ["poststop"] = new JsonArray(new JsonObject { ["path"] = "/bin/false" }) };
        Create(b).Ok();
        Runc["start", b.Id].Ok();
        WaitForStatus(b.Id, "stopped");
        Runc["delete", b.Id].Ok();
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Fifo_device_is_created()
    {
        var b = NewBundle("sh", "-c", "test -p /dev/vessel-fifo && echo fifo");
        b.Linux["devices"] = JsonNode.Parse("""[ { "type": "p", "path": "/dev/vessel-fifo", "fileMode": 432 } ]""");
        Assert.Contains("fifo", Run(b).Ok().Stdout);
    }
}
