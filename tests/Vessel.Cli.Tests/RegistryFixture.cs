using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Vessel.Tests;

namespace Vessel.Cli.Tests;

/// <summary>Debian's docker-registry on 127.0.0.1:&lt;free port&gt;, storage under /tmp/vessel-test-*, killed on Dispose.
/// (A copy of tests/Vessel.Images.Tests/Registry/RegistryFixture.cs: these tests reference only the built binaries.)</summary>
public sealed class RegistryProcess : IDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    private readonly TempDir _dir = new();
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <param name="authYaml">An <c>auth:</c> section (indented by two spaces), or null for an open registry.</param>
    public RegistryProcess(string? authYaml = null)
    {
        if (!File.Exists(Binary)) throw new InvalidOperationException($"{Binary} is missing: run scripts/setup.sh (package docker-registry)");
        Port = FreePort();
        string config = Path.Combine(_dir.Path, "config.yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {_dir.Sub("storage")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{Port}
            {(authYaml is null ? "" : "auth:\n" + authYaml)}
            """);
        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try { WaitReady(); }
        catch { Dispose(); throw; }
    }

    private void WaitReady()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}: {_log}");
            try
            {
                using HttpResponseMessage r = http.GetAsync($"http://{Host}/v2/").GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"docker-registry did not answer /v2/ within 20 s: {_log}");
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _dir.Dispose();
    }
}

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
