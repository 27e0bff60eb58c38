using System.Text.Json;
using Vessel.Api;
using Vessel.Cli.Tests;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>A VM boot as a daemon operation (vm.start, `vessel vm start -d`): the client gets an id at once and can
/// wait on it (or cancel it) with `vessel operation`; a start that cannot happen fails the operation with the reason.</summary>
public sealed class MachineStartOperationTests
{
    [Fact]
    public void Start_detached_is_an_operation_to_wait_on()
    {
        string kernel = InitramfsTests.Kernel() ?? throw new InvalidOperationException("no kernel in .cache/kernel: run scripts/setup.sh");
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        d.Ok("vm", "create", "bg", "--kernel", kernel, "--initramfs", "--memory", "128m");
        string op = d.Ok("vm", "start", "-d", "bg").Out.Trim();
        using (JsonDocument done = JsonDocument.Parse(d.Ok("operation", "wait", op, "--format", "json").Out))
        {
            Assert.Equal("vm.start", done.RootElement.GetProperty("kind").GetString());
            Assert.Equal("succeeded", done.RootElement.GetProperty("status").GetString());
        }
        Assert.Equal(MachineStatus.Running, d.Inspect("bg").State.Status);

        string again = d.Ok("vm", "start", "-d", "bg").Out.Trim();
        Binaries.Result failed = d.Vessel("operation", "wait", again);
        Assert.Equal(125, failed.Code);
        Assert.Contains("already running", failed.Err + failed.Out);
        d.Ok("vm", "kill", "bg");
        d.Ok("vm", "rm", "bg");
    }
}
