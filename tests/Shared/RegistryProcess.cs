using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Vessel.Tests.Shared;

// Linked into the test projects that need a real registry (Vessel.Images.Tests, Vessel.Cli.Tests).
/// <summary>A real registry: Debian's docker-registry (distribution 2.8) on 127.0.0.1:&lt;free port&gt; with its storage
/// in /tmp/vessel-test-*, started as a child process and killed on Dispose.</summary>
public sealed class RegistryProcess : IDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    private readonly string _dir = Directory.CreateTempSubdirectory("vessel-test-registry-").FullName;
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    public int Port { get; }
    /// <summary>"127.0.0.1:PORT", as used in references.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public string Dir => _dir;

    /// <param name="authYaml">An <c>auth:</c> section (indented by two spaces), or null for an open registry.</param>
    public RegistryProcess(string? authYaml = null)
    {
        if (!File.Exists(Binary)) throw new InvalidOperationException($"{Binary} is missing: run scripts/setup.sh (package docker-registry)");
        Port = FreePort();
        string storage = Directory.CreateDirectory(Path.Combine(_dir, "storage")).FullName;
        string config = Path.Combine(_dir, "config.yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: {storage}
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

    public string Log { get { lock (_log) return _log.ToString(); } }

    private void WaitReady()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (_process.HasExited) throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}: {Log}");
            try
            {
                using HttpResponseMessage r = http.GetAsync($"http://{Host}/v2/").GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"docker-registry did not answer /v2/ within 20 s: {Log}");
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
        try { Directory.Delete(_dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
