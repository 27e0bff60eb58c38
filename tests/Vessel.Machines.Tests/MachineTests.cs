using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Cli.Tests;
using Vessel.Machines.Boot;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>A vesseld of the test's own that can be killed and started again on the same state.</summary>
internal sealed class TestDaemon : IDisposable
{
    public string Dir { get; }
    public string Socket => Path.Combine(Dir, "v.sock");
    public string Root => Path.Combine(Dir, "root");
    public string RunRoot => Path.Combine(Dir, "run");
    public Process? Process { get; private set; }

    /// <summary>Networking is global on the host: a default bridge, subnet and nftables table of this daemon's own
    /// (as DaemonFixture), removed in Dispose.</summary>
    public string Bridge { get; } = "vt-" + Tag;
    public string NftTable { get; } = "vessel-t" + Tag;
    public string Subnet { get; } = $"10.{System.Security.Cryptography.RandomNumberGenerator.GetInt32(160, 250)}.{System.Security.Cryptography.RandomNumberGenerator.GetInt32(0, 256)}.0/24";
    private static string Tag => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));

    public TestDaemon(string dir) { Dir = dir; Start(); }

    public void Start()
    {
        var psi = new ProcessStartInfo(Binaries.Vesseld) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { "--socket", Socket, "--root", Root, "--run-root", RunRoot, "--bridge", Bridge, "--nft-table", NftTable, "--bridge-subnet", Subnet })
            psi.ArgumentList.Add(a);
        Process = Process.Start(psi)!;
        Process.BeginErrorReadLine();
        Process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!Binaries.Answers(Socket))
        {
            if (Process.HasExited) throw new InvalidOperationException($"vesseld exited with {Process.ExitCode}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("vesseld did not answer within 30 s");
            Thread.Sleep(20);
        }
    }

    public void Kill9()
    {
        Process!.Kill();
        Process.WaitForExit();
        Process.Dispose();
        Process = null;
    }

    public Binaries.Result Vessel(params string[] args) => Binaries.Run(Binaries.Vessel, ["-H", "unix://" + Socket, .. args], timeout: TimeSpan.FromSeconds(120));

    public Binaries.Result Ok(params string[] args)
    {
        Binaries.Result r = Vessel(args);
        Assert.True(r.Code == 0, $"vessel {string.Join(' ', args)}: {r}");
        return r;
    }

    public MachineInspect Inspect(string name) =>
        JsonSerializer.Deserialize(Ok("vm", "inspect", "--format", "json", name).Out, MachineJson.Default.MachineInspect)!;

    /// <summary>Polls `vm logs` until <paramref name="text"/> shows (a boot under TCG takes seconds).</summary>
    public string WaitForLog(string name, string text, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (true)
        {
            string log = Ok("vm", "logs", name).Out;
            if (log.Contains(text, StringComparison.Ordinal)) return log;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"\"{text}\" did not appear in the console of {name}:\n{log}");
            Thread.Sleep(250);
        }
    }

    /// <summary>Waits until the guest has booted <paramref name="boots"/> times since create (the log accumulates).</summary>
    public void WaitForBoot(string name, int boots)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            string log = Ok("vm", "logs", name).Out;
            int n = 0;
            for (int i = log.IndexOf(Initramfs.Marker + " ", StringComparison.Ordinal); i >= 0; i = log.IndexOf(Initramfs.Marker + " ", i + 1, StringComparison.Ordinal)) n++;
            if (n >= boots) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} did not boot {boots} times:\n{log}");
            Thread.Sleep(250);
        }
    }

    /// <summary>Runs a shell command on the console and returns what the console showed until it finished (the
    /// end marker is computed by the shell, so the echoed command line never matches it).</summary>
    public string Shell(string name, string command)
    {
        using var console = new ConsoleClient(Socket, name);
        int n = Random.Shared.Next(100000, 999999);
        console.Send($"\n{command}; echo END-$(({n}+1))\n");
        return console.ReadUntil($"END-{n + 1}", TimeSpan.FromSeconds(60));
    }

    public void WaitForStatus(string name, string status, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (Inspect(name).State.Status != status)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"VM {name} did not become {status}: {Inspect(name).State}");
            Thread.Sleep(100);
        }
    }

    public void Dispose()
    {
        try
        {
            if (Process is null) Start();
            foreach (string id in Vessel("vm", "ls", "-a", "-q").OutLines) Vessel("vm", "rm", "-f", id);
            foreach (string id in Vessel("ps", "-a", "-q").OutLines) Vessel("rm", "-f", id);
            foreach (string id in Vessel("network", "ls", "-q").OutLines) Vessel("network", "rm", id);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        if (Process is not null)
        {
            Binaries.Stop(Process.Id);
            Process.WaitForExit(10_000);
            Process.Dispose();
        }
        Binaries.Run("ip", ["link", "del", Bridge]);
        Binaries.Run("nft", ["delete", "table", "inet", NftTable]);
    }
}

/// <summary>Attaches to a VM's console through the API's HTTP upgrade.</summary>
internal sealed class ConsoleClient : IDisposable
{
    private readonly Socket _s = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly StringBuilder _seen = new();

    public ConsoleClient(string apiSocket, string vm)
    {
        _s.Connect(new UnixDomainSocketEndPoint(apiSocket));
        _s.Send(Encoding.ASCII.GetBytes($"POST /v1/vms/{vm}/console HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"));
        string head = ReadUntil("\r\n\r\n", TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 101", head);
        _seen.Clear();
    }

    public void Send(string text) => _s.Send(Encoding.UTF8.GetBytes(text));

    public string ReadUntil(string text, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        var buf = new byte[4096];
        while (!_seen.ToString().Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"\"{text}\" not seen on the console; got:\n{_seen}");
            if (!_s.Poll(100_000, SelectMode.SelectRead)) continue;
            int n = _s.Receive(buf);
            if (n == 0) throw new IOException($"console closed; got:\n{_seen}");
            _seen.Append(Encoding.UTF8.GetString(buf, 0, n));
        }
        return _seen.ToString();
    }

    public void Dispose() => _s.Dispose();
}

/// <summary>Boots Debian's kernel with the initramfs Vessel generates, under the accelerator the probe picks (TCG
/// here), through bin/vessel and bin/vesseld: marker on the serial console, console round trip, pause/resume,
/// re-adoption after kill -9 of vesseld, ACPI stop recorded as guest-shutdown.</summary>
public sealed class MachineLifecycleTests
{
    private static string Kernel => InitramfsTests.Kernel() ?? throw new InvalidOperationException("no kernel in .cache/kernel: run scripts/setup.sh");

    [Fact]
    public void Boot_console_pause_resume_readopt_and_stop()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        Binaries.Result info = d.Ok("system", "info", "--format", "json");
        SystemInfoResponse si = JsonSerializer.Deserialize(info.Out, ApiJson.Default.SystemInfoResponse)!;
        Assert.NotNull(si.Accel);
        Assert.NotEmpty(si.Accel!.Reason);

        d.Ok("vm", "create", "life", "--kernel", Kernel, "--initramfs", "--memory", "256m");
        Assert.Equal(MachineStatus.Created, d.Inspect("life").State.Status);
        d.Ok("vm", "start", "life");
        MachineInspect running = d.Inspect("life");
        Assert.Equal(MachineStatus.Running, running.State.Status);
        Assert.Equal(si.Accel.Accel, running.State.Accel);
        Assert.True(running.State.Pid > 0);
        d.WaitForLog("life", Initramfs.Marker + " ");

        using (var console = new ConsoleClient(d.Socket, "life"))
        {
            console.Send("\necho vessel-$((6*7))\n");
            console.ReadUntil("vessel-42", TimeSpan.FromSeconds(60));
        }
        Binaries.Result again = d.Vessel("vm", "start", "life");
        Assert.Equal(125, again.Code);
        Assert.Contains("already running", again.Err);

        d.Ok("vm", "pause", "life");
        Assert.Equal(MachineStatus.Paused, d.Inspect("life").State.Status);
        d.Ok("vm", "resume", "life");
        Assert.Equal(MachineStatus.Running, d.Inspect("life").State.Status);

        string before = d.Ok("events", "--since", "10m", "--until", "now", "--filter", "type=vm").Out;
        foreach (string action in new[] { "create", "start", "pause", "unpause" }) Assert.Contains($" vm {action} ", before);

        // The daemon dies; QEMU does not; the next daemon finds it again by pid + start time and QMP.
        int qemuPid = running.State.Pid;
        d.Kill9();
        Assert.True(Directory.Exists($"/proc/{qemuPid}"));
        d.Start();
        d.WaitForStatus("life", MachineStatus.Running);
        Assert.Equal(qemuPid, d.Inspect("life").State.Pid);
        using (var console = new ConsoleClient(d.Socket, "life"))
        {
            console.Send("\necho still-$((2*3))\n");
            console.ReadUntil("still-6", TimeSpan.FromSeconds(60));
        }

        d.Ok("vm", "stop", "life");
        MachineInspect stopped = d.Inspect("life");
        Assert.Equal(MachineStatus.Stopped, stopped.State.Status);
        Assert.Equal("guest-shutdown", stopped.State.ExitReason);
        Assert.False(Directory.Exists($"/proc/{qemuPid}") && !File.ReadAllText($"/proc/{qemuPid}/stat").Contains(") Z", StringComparison.Ordinal));
        string events = d.Ok("events", "--since", "10m", "--until", "now", "--filter", "type=vm").Out;
        foreach (string action in new[] { "powerdown", "shutdown", "die", "stop" })
            Assert.Contains($" vm {action} ", events);
        d.Ok("vm", "rm", "life");
        Assert.Empty(d.Ok("vm", "ls", "-a", "-q").OutLines);
    }

    [Fact]
    public void Errors_name_the_problem()
    {
        using var tmp = new TempDir();
        using var d = new TestDaemon(tmp.Path);
        Binaries.Result r = d.Vessel("vm", "create", "x");
        Assert.Equal(125, r.Code);
        Assert.Contains("a VM needs a disk image", r.Err);
        string junk = Path.Combine(tmp.Path, "junk.vmdk");
        File.WriteAllText(junk, "KDMV this is not really a vmdk");
        r = d.Vessel("vm", "create", "x", junk);
        Assert.Equal(125, r.Code);
        Assert.Contains(junk, r.Err);
        r = d.Vessel("vm", "create", "x", "--kernel", Kernel, "--memory", "100000g");
        Assert.Equal(0, r.Code);
        r = d.Vessel("vm", "start", "x");
        Assert.Equal(125, r.Code);
        Assert.Contains("not enough memory", r.Err);
        r = d.Vessel("vm", "create", "y", "--kernel", Kernel, "--cache", "fast");
        Assert.Contains("--cache fast", r.Err);
    }
}
