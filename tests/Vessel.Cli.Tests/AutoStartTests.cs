using System.Security.Cryptography;
using Vessel.Tests;
using Vessel.Api;

namespace Vessel.Cli.Tests;

/// <summary>Auto-start: `vessel` without -H or $VESSEL_HOST, when nothing serves its default socket, starts vesseld.
/// The test never touches /run/vessel or /var/lib/vessel (a daemon there would recreate the bridge and nftables table
/// that `make demo` left in vessel.db): $VESSEL_RUN_ROOT and $VESSEL_ROOT move the CLI's default socket and the
/// daemon's state under a temp dir, and $VESSEL_DAEMON is a wrapper giving that daemon its own bridge and table.</summary>
public sealed class AutoStartTests
{
    [Fact]
    public void WithoutAHostVesselStartsVesseldAndWaitsForIt()
    {
        Assert.SkipWhen(Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root", "auto-start needs root");
        using var tmp = new TempDir();
        string runRoot = Path.Combine(tmp.Path, "run"), root = Path.Combine(tmp.Path, "root");
        string tag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        string bridge = "vt-a" + tag[..7], table = "vessel-ta" + tag;
        string wrapper = Path.Combine(tmp.Path, "vesseld");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec '{Binaries.Vesseld}' --bridge {bridge} --nft-table {table} \"$@\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ed);
        var env = new Dictionary<string, string?> { ["VESSEL_DAEMON"] = wrapper, ["VESSEL_RUN_ROOT"] = runRoot, ["VESSEL_ROOT"] = root };
        string socket = Path.Combine(runRoot, "vessel.sock"), pidFile = Path.Combine(runRoot, "vesseld.pid");
        try
        {
            var r = Binaries.Run(Binaries.Vessel, ["version"], env);
            Assert.True(r.Code == 0, r.ToString());
            Assert.Matches(@"^vessel: started vesseld \(pid \d+\)$", Assert.Single(r.ErrLines));
            Assert.Contains("Server:", r.Out);
            Assert.True(Binaries.Answers(socket));
            // It runs on the private state, and its log is in the private run root.
            Assert.True(File.Exists(Path.Combine(root, "vessel.db")), "no vessel.db under " + root);
            Assert.True(File.Exists(Path.Combine(runRoot, "vesseld.log")));
            // The next command finds it running: nothing more is started.
            var again = Binaries.Run(Binaries.Vessel, ["info"], new Dictionary<string, string?> { ["VESSEL_RUN_ROOT"] = runRoot });
            Assert.True(again.Code == 0, again.ToString());
            Assert.Empty(again.Err);
        }
        finally
        {
            try
            {
                if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid)) Binaries.Stop(pid);
            }
            catch (IOException) { }
            // Nothing should have made them (no network was used); removed in case a regression did.
            Binaries.Run("ip", ["link", "del", bridge]);
            Binaries.Run("nft", ["delete", "table", "inet", table]);
        }
        Assert.False(File.Exists(socket));
    }
}
