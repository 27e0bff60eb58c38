using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Vessel.Cli.Tests;
using Vessel.Tests;

namespace Vessel.DockerApi.Tests;

/// <summary>One vesseld (private socket, state root and run root under /tmp/vessel-test-*) whose Docker API socket is
/// RUNROOT/docker.sock, with a busybox-static image "bb:1" brought in through `docker import`. The docker client
/// runs with its own DOCKER_CONFIG, so the user's ~/.docker is neither read nor written. Every container is removed
/// before the daemon stops.</summary>
public sealed class DockerFixture : IDisposable
{
    public const string Image = "bb:1";
    public DaemonFixture D { get; } = new();
    public string Socket => Path.Combine(D.RunRoot, "docker.sock");
    public string Host => "unix://" + Socket;
    public string DockerBinary { get; } = Path.Combine(RepoRoot(), ".cache", "docker", "docker");
    private readonly string _config;

    public DockerFixture()
    {
        // The daemon (D) is already running: a set-up that fails must stop it, or it outlives the test run.
        try
        {
            if (!File.Exists(DockerBinary)) throw new InvalidOperationException($"{DockerBinary} is missing: run scripts/setup.sh");
            _config = D.Tmp.Sub("docker-config");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Binaries.Answers(Socket))
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Socket} does not answer: {string.Join('\n', D.Log)}");
                Thread.Sleep(20);
            }
            string rootfs = Path.Combine(D.Tmp.Sub("bb"), "rootfs");
            Check(Binaries.Run("bash", [Path.Combine(RepoRoot(), "tests", "fixtures", "busybox-rootfs.sh"), rootfs]));
            string tar = Path.Combine(D.Tmp.Path, "bb.tar");
            Check(Binaries.Run("tar", ["-C", rootfs, "-cf", tar, "."]));
            Check(Docker("import", "-c", "CMD [\"sh\"]", "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", tar, Image));
        }
        catch
        {
            D.Dispose();
            throw;
        }
    }

    private static void Check(Binaries.Result r)
    {
        if (r.Code != 0) throw new InvalidOperationException(r.ToString());
    }

    public static string RepoRoot() => Path.GetFullPath(Path.Combine(Binaries.Dir, ".."));

    /// <summary>Runs the docker CLI against this daemon.</summary>
    public Binaries.Result Docker(params string[] args) => Binaries.Run(DockerBinary, args, Env(), TimeSpan.FromSeconds(90));

    public Dictionary<string, string?> Env() => new()
    {
        ["DOCKER_HOST"] = Host, ["DOCKER_CONFIG"] = _config, ["DOCKER_BUILDKIT"] = "0", ["DOCKER_CLI_EXPERIMENTAL"] = null,
    };

    /// <summary>A raw HTTP/1.1 request on the Docker socket: (status line, headers+body as text).</summary>
    public (int Status, string Head, string Body) Raw(string method, string path, string? body = null, params string[] headers)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.ReceiveTimeout = 30_000;
        s.Connect(new UnixDomainSocketEndPoint(Socket));
        var req = new StringBuilder($"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
        foreach (string h in headers) req.Append(h).Append("\r\n");
        byte[] b = Encoding.UTF8.GetBytes(body ?? "");
        if (body is not null) req.Append("Content-Type: application/json\r\n");
        req.Append($"Content-Length: {b.Length}\r\n\r\n");
        s.Send([.. Encoding.ASCII.GetBytes(req.ToString()), .. b]);
        var all = new MemoryStream();
        var buf = new byte[65536];
        for (int n; (n = s.Receive(buf)) > 0;) all.Write(buf, 0, n);
        string text = Encoding.UTF8.GetString(all.ToArray());
        int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        string head = split < 0 ? text : text[..split];
        int status = int.Parse(head.Split(' ')[1]);
        return (status, head, split < 0 ? "" : text[(split + 4)..]);
    }

    public void Dispose()
    {
        try
        {
            var ids = D.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) D.Vessel(["rm", "-f", .. ids]);
            D.Vessel("network", "prune", "-f"); // user networks have bridges on the host
        }
        finally { D.Dispose(); }
    }
}
