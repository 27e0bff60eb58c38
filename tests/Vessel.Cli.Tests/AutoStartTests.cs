using Vessel.Api;

namespace Vessel.Cli.Tests;

/// <summary>Auto-start uses the real default socket (/run/vessel/vessel.sock), state root and run root, so it
/// runs only as root and only when nothing serves that socket; it stops the daemon it started and removes the
/// directories that did not exist before.</summary>
public sealed class AutoStartTests
{
    [Fact]
    public void WithoutAHostVesselStartsVesseldAndWaitsForIt()
    {
        Assert.SkipWhen(Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root", "auto-start needs root");
        Assert.SkipWhen(Binaries.Answers(ApiInfo.DefaultSocket), $"something already serves {ApiInfo.DefaultSocket}");
        bool hadRoot = Directory.Exists(ApiInfo.DefaultRoot), hadRun = Directory.Exists(ApiInfo.DefaultRunRoot);
        string pidFile = Path.Combine(ApiInfo.DefaultRunRoot, "vesseld.pid");
        try
        {
            var r = Binaries.Run(Binaries.Vessel, ["version"], new Dictionary<string, string?> { ["VESSEL_DAEMON"] = Binaries.Vesseld });
            Assert.True(r.Code == 0, r.ToString());
            Assert.Matches(@"^vessel: started vesseld \(pid \d+\)$", Assert.Single(r.ErrLines));
            Assert.Contains("Server:", r.Out);
            Assert.True(Binaries.Answers(ApiInfo.DefaultSocket));
            // The next command finds it running: nothing more is started.
            var again = Binaries.Run(Binaries.Vessel, ["info"]);
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
            if (!hadRun) try { Directory.Delete(ApiInfo.DefaultRunRoot, recursive: true); } catch (IOException) { }
            else try { File.Delete(Path.Combine(ApiInfo.DefaultRunRoot, "vesseld.log")); } catch (IOException) { }
            if (!hadRoot) try { Directory.Delete(ApiInfo.DefaultRoot, recursive: true); } catch (IOException) { }
        }
        Assert.False(File.Exists(ApiInfo.DefaultSocket));
    }
}
