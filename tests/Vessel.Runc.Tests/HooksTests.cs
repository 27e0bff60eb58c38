using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class HooksTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    /// <summary>A hook that appends "NAME STATUS" (status from the state JSON on its stdin) to LOG. /bin/sh exists
    /// on the host and in the rootfs, and the log's dir is bind-mounted at the same path, so one hook works
    /// wherever the spec says it runs.</summary>
    private static JsonObject Hook(string name, string log) => new()
    {
        ["path"] = "/bin/sh",
        ["args"] = Bundle.Strings(["sh", "-c", $"echo {name} $(tr -d '\\n' | sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p') >> {log}"]),
    };

    [Fact]
    public void Hooks_run_in_order_with_the_state_on_stdin()
    {
        var dir = NewTempDir("hooks");
        var log = Path.Combine(dir, "log");
        var b = NewBundle().Shell($"echo process >> {log}");
        b.AddMount(dir, "bind", dir, "rbind", "rw");
        var hooks = new JsonObject();
        foreach (var name in new[] { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop" })
            hooks[name] = new JsonArray(Hook(name, log));
        b.Config["hooks"] = hooks;
        Run(b).Ok();

        var lines = File.ReadAllLines(log);
        var names = lines.Select(l => l.Split(' ')[0]).ToList();
        var hookOrder = names.Where(n => n != "process").ToList();
        Assert.True(hookOrder.SequenceEqual(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]),
            "hooks ran in this order:\n" + string.Join("\n", lines));
        Assert.True(names.IndexOf("startContainer") < names.IndexOf("process"), string.Join("\n", lines));
        var status = lines.Where(l => l.Contains(' ')).ToDictionary(l => l.Split(' ')[0], l => l.Split(' ')[1]);
        // Create-time hooks are shown "created", poststart "running" (runtime-tools' hooks_stdin; crun does the same).
        Assert.Equal("created", status["createRuntime"]);
        Assert.Equal("created", status["prestart"]);
        Assert.Equal("running", status["poststart"]);
        Assert.Equal("stopped", status["poststop"]);
    }

    [Fact]
    public void A_failing_createRuntime_hook_fails_create_and_leaves_nothing()
    {
        var b = NewBundle("true");
        b.Config["hooks"] = new JsonObject
        {
            ["createRuntime"] = new JsonArray(new JsonObject { ["path"] = "/bin/sh", ["args"] = Bundle.Strings(["sh", "-c", "echo boom >&2; exit 3"]) }),
        };
        Create(b).FailsWith(1, "createRuntime", "/bin/sh", "exit status 3", "boom");
        Runc["state", b.Id].FailsWith(1, "does not exist");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void A_missing_hook_binary_fails_create_clearly()
    {
        var b = NewBundle("true");
        b.Config["hooks"] = new JsonObject { ["prestart"] = new JsonArray(new JsonObject { ["path"] = "/no/such/hook" }) };
        Create(b).FailsWith(1, "/no/such/hook");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void A_hook_that_overruns_its_timeout_is_killed()
    {
        var b = NewBundle("true");
        b.Config["hooks"] = new JsonObject
        {
            ["createRuntime"] = new JsonArray(new JsonObject { ["path"] = "/bin/sleep", ["args"] = Bundle.Strings(["sleep", "600"]), ["timeout"] = 1 }),
        };
        Create(b).FailsWith(1, "createRuntime", "timed out");
        Assert.Empty(LeftoversOf(b.Id));
    }
}
