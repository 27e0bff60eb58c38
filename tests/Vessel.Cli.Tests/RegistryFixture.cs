using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Vessel.Tests;

using Vessel.Tests.Shared;

namespace Vessel.Cli.Tests;

/// <summary>For a test class: an open registry, one with htpasswd (bcrypt) Basic auth, a vesseld whose credentials
/// file is under /tmp/vessel-test-*, and a busybox-static rootfs tarball.</summary>
public sealed class RegistryDaemonFixture : IDisposable
{
    public const string User = "vessel";
    public const string Password = "s3cret pass";
    private readonly TempDir _tmp = new();
    public RegistryProcess Open { get; }
    public RegistryProcess Auth { get; }
    public DaemonFixture Daemon { get; }
    public string AuthFile { get; }
    public string RootfsTar { get; }
    public string Dir => _tmp.Path;

    public RegistryDaemonFixture()
    {
        try
        {
            Open = new RegistryProcess();
            string htpasswd = Path.Combine(_tmp.Path, "htpasswd");
            var h = Binaries.Run("htpasswd", ["-Bbn", User, Password]);
            if (h.Code != 0) throw new InvalidOperationException($"htpasswd failed: {h}");
            File.WriteAllText(htpasswd, h.Out);
            Auth = new RegistryProcess($"  htpasswd:\n    realm: vessel-test\n    path: {htpasswd}\n");
            AuthFile = Path.Combine(_tmp.Path, "auth.json");
            Daemon = new DaemonFixture(["--auth-file", AuthFile]);
            string rootfs = Path.Combine(_tmp.Path, "rootfs");
            Check(Binaries.Run(Path.Combine(RepoRoot(), "tests", "fixtures", "busybox-rootfs.sh"), [rootfs]));
            RootfsTar = Path.Combine(_tmp.Path, "rootfs.tar");
            Check(Binaries.Run("tar", ["-C", rootfs, "-cf", RootfsTar, "."]));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The busybox rootfs plus one file naming <paramref name="tag"/>: a layer no other test's image shares.</summary>
    public string UniqueRootfs(string tag)
    {
        string tar = Path.Combine(_tmp.Path, $"rootfs-{tag}.tar");
        File.Copy(RootfsTar, tar, overwrite: true);
        string extra = _tmp.Sub($"extra-{tag}");
        Directory.CreateDirectory(Path.Combine(extra, "etc"));
        File.WriteAllText(Path.Combine(extra, "etc", "vessel-test"), tag + "\n");
        Check(Binaries.Run("tar", ["-C", extra, "-rf", tar, "./etc/vessel-test"]));
        return tar;
    }

    private static void Check(Binaries.Result r)
    {
        if (r.Code != 0) throw new InvalidOperationException(r.ToString());
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Vessel.slnx"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root");
    }

    public void Dispose()
    {
        Daemon?.Dispose();
        Auth?.Dispose();
        Open?.Dispose();
        _tmp.Dispose();
    }
}
