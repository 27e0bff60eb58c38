using Vessel.Api;
using Vessel.Cli.Tests;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>Live migration between two Vessel daemons (two state roots) on this host: the guest keeps its memory
/// (a tmpfs file written before is still there after) and runs on the target; the source forgets it.</summary>
public sealed class MachineMigrationTests
{
    [Fact]
    public void A_running_vm_moves_to_another_daemon_with_its_memory()
    {
        using var tmpA = new TempDir();
        using var tmpB = new TempDir();
        using var a = new TestDaemon(tmpA.Path);
        using var b = new TestDaemon(tmpB.Path);
        a.Ok("vm", "create", "mover", "--kernel", InitramfsTests.Kernel()!, "--initramfs", "--memory", "256m", "--disk", "32m");
        a.Ok("vm", "start", "mover");
        a.WaitForBoot("mover", 1);
        a.Shell("mover", "echo kept > /tmp/m");
        a.Ok("vm", "migrate", "mover", "--to", b.Socket);
        Assert.Empty(a.Ok("vm", "ls", "-a", "-q").OutLines);
        b.WaitForStatus("mover", MachineStatus.Running);
        Assert.Contains("kept-after-move", b.Shell("mover", "echo $(cat /tmp/m)-after-move"));
        Assert.Contains("status=completed", a.Ok("events", "--since", "10m", "--until", "now", "--filter", "action=migrate").Out);
        b.Ok("vm", "stop", "mover");
        Assert.Equal("guest-shutdown", b.Inspect("mover").State.ExitReason);
        b.Ok("vm", "rm", "mover");
        Binaries.Result r = a.Vessel("vm", "migrate", "nope", "--to", b.Socket);
        Assert.Equal(125, r.Code);
        Assert.Contains("no such VM: nope", r.Err);
    }
}
