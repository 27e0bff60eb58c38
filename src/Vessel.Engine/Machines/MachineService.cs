using System.Globalization;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.State;
using Vessel.Linux;
using Vessel.Machines;
using Vessel.Machines.Boot;
using Vessel.Machines.Disks;
using Vessel.Machines.Qmp;

namespace Vessel.Engine.Machines;

/// <summary>Virtual machines on QEMU (docs/machines.md). Each running VM is one qemu-system-x86_64 started by the
/// daemon in a session of its own, driven over QMP (<see cref="QmpClient"/>), its serial console on a Unix socket
/// whose output QEMU also appends to console.log (the VM's log). QEMU outlives the daemon; the next daemon finds it
/// again by pid + start time and reconnects to QMP. State lives in the machines table, one transaction per change;
/// disks and boot files in machines/ID under the state root, shared bases (imported images, frozen clone sources)
/// in machines/pool.</summary>
public sealed partial class MachineService : IDisposable
{
    public const long DefaultMemoryMiB = 512;
    /// <summary>QEMU's own overhead beyond guest RAM, for the MemAvailable check.</summary>
    private const long OverheadMiB = 64;

    private readonly Database _db;
    private readonly EventBus _events;
    private readonly Action<string> _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, MachineRecord> _all = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Live> _live = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consoles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SemaphoreSlim> _opLocks = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lazy<AccelChoice> _probe;
    private readonly Networks.NetworkService? _networks;

    public string Dir { get; }
    public string Pool { get; }
    public string RunDir { get; }

    /// <summary>A running QEMU: its QMP connection and the task that follows its events to its exit.</summary>
    private sealed class Live(int pid, ulong start, bool ourChild)
    {
        public int Pid { get; } = pid;
        public ulong Start { get; } = start;
        public bool OurChild { get; } = ourChild;
        public QmpClient? Qmp { get; set; }
        public string? ShutdownReason { get; set; }
        public bool Killed { get; set; }
        public TaskCompletionSource Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public MachineService(string root, string runRoot, Database db, EventBus events, Action<string>? log, Networks.NetworkService? networks = null)
    {
        _networks = networks;
        _db = db;
        _events = events;
        _log = log ?? (_ => { });
        Dir = Path.Combine(root, "machines");
        Pool = Path.Combine(Dir, "pool");
        RunDir = Path.Combine(runRoot, "vm");
        Directory.CreateDirectory(Dir, (UnixFileMode)0x1c0);
        Directory.CreateDirectory(Pool, (UnixFileMode)0x1c0);
        Directory.CreateDirectory(RunDir, (UnixFileMode)0x1c0);
        _probe = new Lazy<AccelChoice>(() =>
        {
            AccelChoice c = AccelProbe.Probe();
            _log($"accelerator for VMs: {c.Accel} ({c.Reason})");
            return c;
        });
    }

    /// <summary>The probed accelerator (once per daemon start).</summary>
    public AccelChoice Accel => _probe.Value;

    public int Count { get { lock (_lock) return _all.Count; } }

    private string DirOf(string id) => Path.Combine(Dir, id);
    private string RunOf(string id) => Path.Combine(RunDir, id[..16]);
    private string QmpOf(string id) => Path.Combine(RunOf(id), "qmp.sock");
    private string ConsoleOf(string id) => Path.Combine(RunOf(id), "console.sock");
    public string LogOf(string id) => Path.Combine(DirOf(id), "console.log");
    private string FileOf(string relative) => Path.Combine(Dir, relative);

    // ---- start-up ------------------------------------------------------------------------------------------

    public void Recover()
    {
        List<MachineRecord> rows = _db.Read(c =>
        {
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = "SELECT id, name, created, config, state FROM machines";
            using SqliteDataReader r = cmd.ExecuteReader();
            var list = new List<MachineRecord>();
            while (r.Read())
                list.Add(new MachineRecord(r.GetString(0), r.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2) / 1_000_000),
                    JsonSerializer.Deserialize(r.GetString(3), MachineRecordJson.Default.MachineConfigRecord)!,
                    JsonSerializer.Deserialize(r.GetString(4), MachineRecordJson.Default.MachineStateRecord)!));
            return list;
        });
        lock (_lock) foreach (MachineRecord m in rows) _all[m.Id] = m;
        foreach (MachineRecord m in rows)
        {
            if (m.State.Status is not (MachineStatus.Running or MachineStatus.Paused)) continue;
            if (Processes.IsAlive(m.State.Pid, m.State.PidStart))
            {
                var live = new Live(m.State.Pid, m.State.PidStart, ourChild: false);
                lock (_lock) _live[m.Id] = live;
                ReattachNics(m);
                _ = Task.Run(() => AdoptAsync(m.Id, live));
            }
            else
            {
                RemoveTaps(m);
                Save(m with { State = m.State with { Status = MachineStatus.Stopped, Pid = 0, PidStart = 0, FinishedAt = DateTimeOffset.UtcNow,
                    ExitReason = "exited while vesseld was down" } });
                _events.Publish("vm", "die", m.Id, m.Name, new Dictionary<string, string> { ["reason"] = "exited while vesseld was down" });
            }
        }
        foreach (string dir in Directory.EnumerateDirectories(Dir))
        {
            string id = Path.GetFileName(dir);
            if (id == "pool") continue;
            bool known;
            lock (_lock) known = _all.ContainsKey(id);
            if (known) continue;
            _log($"removing leftover VM directory {id}");
            try { Directory.Delete(dir, true); } catch (IOException e) { _log($"vm {id}: {e.Message}"); }
        }
        CollectPoolQuietly();
    }

    private async Task AdoptAsync(string id, Live live)
    {
        try
        {
            live.Qmp = await ConnectQmpAsync(id, live, TimeSpan.FromSeconds(10), _stop.Token);
            _log($"vm {Name(id)}: re-adopted (qemu pid {live.Pid}, QEMU {live.Qmp.Version})");
            JsonElement status = await live.Qmp.ExecuteAsync("query-status", null, _stop.Token);
            bool running = status.TryGetProperty("running", out JsonElement r) && r.GetBoolean();
            Update(id, s => s with { Status = running ? MachineStatus.Running : MachineStatus.Paused });
            await PumpAsync(id, live);
        }
        catch (Exception e) when (e is MachineException or IOException or SocketException or OperationCanceledException)
        {
            _log($"vm {Name(id)}: cannot reconnect to QMP of qemu pid {live.Pid}: {e.Message}");
            if (!_stop.IsCancellationRequested && !Processes.IsAlive(live.Pid, live.Start)) Exited(id, live, "qemu exited");
        }
    }

    // ---- create --------------------------------------------------------------------------------------------

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]
    private static partial Regex NamePattern();

    public MachineCreateResponse Create(MachineCreateRequest req) => Guard(() => CreateCore(req, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), null));

    private MachineCreateResponse CreateCore(MachineCreateRequest req, string id, Func<string, List<MachineDiskRecord>>? disks)
    {
        string name = req.Name ?? "";
        if (!NamePattern().IsMatch(name)) throw EngineException.Invalid($"invalid VM name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (at most 63)");
        lock (_lock)
            if (_all.Values.FirstOrDefault(m => m.Name == name) is { } other)
                throw EngineException.Conflict($"the VM name \"{name}\" is already in use by VM \"{other.Id[..12]}\"");
        var warnings = new List<string>();
        if (disks is null)
        {
            if (req.Image is null && req.Kernel is null) throw EngineException.Invalid("a VM needs a disk image (IMAGE) or a kernel to boot (--kernel)");
            if (req.Image is not null && req.Kernel is not null && req.DiskSize is null) { }
            if (req.Initrd is not null && req.Kernel is null) throw EngineException.Invalid("--initrd needs --kernel");
            if (req.Initramfs && req.Initrd is not null) throw EngineException.Invalid("give --initrd or --initramfs, not both");
        }
        int cpus = req.Cpus ?? 1;
        if (cpus is < 1 or > 255) throw EngineException.Invalid($"--cpus {cpus}: expected 1 to 255");
        long memMiB = req.Memory is long m ? m / (1024 * 1024) : DefaultMemoryMiB;
        if (memMiB < 32) throw EngineException.Invalid($"--memory {req.Memory}: a VM needs at least 32 MiB");
        string cache = req.Cache ?? "writeback";
        if (!QemuCommand.CacheModes.Contains(cache)) throw EngineException.Invalid($"--cache {cache}: use {string.Join(", ", QemuCommand.CacheModes)}");
        if (req.Accel is not (null or "" or "auto" or "kvm" or "tcg")) throw EngineException.Invalid($"--accel {req.Accel}: use auto, kvm or tcg");
        List<string> networks = CheckNetworks(req.Networks);
        if (req.DiskSize is < 0) throw EngineException.Invalid("--disk: the size must be positive");

        string dir = DirOf(id);
        Directory.CreateDirectory(dir, (UnixFileMode)0x1c0);
        try
        {
            string? kernel = null, initrd = null;
            if (req.Kernel is not null)
            {
                if (!File.Exists(req.Kernel)) throw EngineException.Invalid($"--kernel {req.Kernel}: no such file on the daemon's host");
                kernel = "vmlinuz";
                File.Copy(req.Kernel, Path.Combine(dir, kernel));
                if (req.Initrd is not null)
                {
                    if (!File.Exists(req.Initrd)) throw EngineException.Invalid($"--initrd {req.Initrd}: no such file on the daemon's host");
                    initrd = "initrd.img";
                    File.Copy(req.Initrd, Path.Combine(dir, initrd));
                }
                else if (req.Initramfs)
                {
                    string? modules = Initramfs.ModulesFor(req.Kernel);
                    if (modules is null) warnings.Add($"no module tree found for {req.Kernel} (expected ../lib/modules/VERSION beside it): the initramfs has no modules");
                    initrd = "initrd.img";
                    Initramfs.Write(Path.Combine(dir, initrd), new InitramfsOptions { ModulesDir = modules });
                }
            }
            else if (req.Kernel is null && (req.Initramfs || req.Append is not null)) throw EngineException.Invalid("--initramfs and --append need --kernel");
            string? append = req.Kernel is null ? null : BuildAppend(req, name);

            List<MachineDiskRecord> diskList;
            lock (_poolGate) diskList = disks?.Invoke(dir) ?? CreateDisks(req, id, dir);
            if (req.UserData is not null || req.SshKeys is { Count: > 0 })
            {
                CloudInit.WriteSeed(Path.Combine(dir, "seed.iso"), name, id, req.UserData, req.SshKeys ?? []);
                diskList.Add(new MachineDiskRecord("seed", Path.Combine(id, "seed.iso"), "raw", ReadOnly: true));
            }
            File.WriteAllBytes(LogOf(id), []);
            List<MachineNicRecord> nics = ReserveNics(id, name, networks);
            var config = new MachineConfigRecord
            {
                Nics = nics,
                Request = req with { Name = name }, Cpus = cpus, MemoryMiB = memMiB, Cache = cache, Kernel = kernel, Initrd = initrd,
                Append = append, Disks = diskList, Source = req.Image ?? req.Kernel,
            };
            var rec = new MachineRecord(id, name, DateTimeOffset.UtcNow, config, new MachineStateRecord());
            _db.Write((c, tx) =>
            {
                using SqliteCommand cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO machines (id, name, created, config, state) VALUES ($id, $name, $created, $config, $state)";
                cmd.Parameters.AddWithValue("$id", id);
                cmd.Parameters.AddWithValue("$name", name);
                cmd.Parameters.AddWithValue("$created", rec.Created.ToUnixTimeMilliseconds() * 1_000_000);
                cmd.Parameters.AddWithValue("$config", JsonSerializer.Serialize(config, MachineRecordJson.Default.MachineConfigRecord));
                cmd.Parameters.AddWithValue("$state", JsonSerializer.Serialize(rec.State, MachineRecordJson.Default.MachineStateRecord));
                return cmd.ExecuteNonQuery();
            });
            lock (_lock) _all[id] = rec;
            _events.Publish("vm", "create", id, name);
            return new MachineCreateResponse(id, name, warnings);
        }
        catch
        {
            ReleaseNics(id, networks.Count);
            try { Directory.Delete(dir, true); } catch (IOException) { }
            throw;
        }
    }

    private static string BuildAppend(MachineCreateRequest req, string name)
    {
        string append = req.Append ?? "";
        if (!append.Contains("console=", StringComparison.Ordinal)) append = ("console=ttyS0 " + append).Trim();
        if (req.Initramfs && !append.Contains("vessel.hostname=", StringComparison.Ordinal)) append += $" vessel.hostname={name}";
        return append;
    }

    /// <summary>The root disk: an overlay on the imported image (in the pool), or a blank qcow2 of --disk SIZE.</summary>
    private List<MachineDiskRecord> CreateDisks(MachineCreateRequest req, string id, string dir)
    {
        var list = new List<MachineDiskRecord>();
        string disk = Path.Combine(dir, "disk.qcow2");
        if (req.Image is not null)
        {
            string baseFile = ImportImage(req.Image);
            DiskInfo info = QemuImg.Info(FileOf(baseFile));
            long size = Math.Max(req.DiskSize ?? 0, info.VirtualSize);
            // A relative backing name: the VM's directory and the pool are siblings in every state root (migration links both).
            QemuImg.Create(disk, size, Path.Combine("..", baseFile), info.Format);
            list.Add(new MachineDiskRecord("disk0", Path.Combine(id, "disk.qcow2"), "qcow2", false));
        }
        else if (req.DiskSize is long size && size > 0)
        {
            QemuImg.Create(disk, size);
            list.Add(new MachineDiskRecord("disk0", Path.Combine(id, "disk.qcow2"), "qcow2", false));
        }
        return list;
    }

    /// <summary>Brings an image into the pool once (keyed by path, size and mtime): qcow2 and raw copied as they are
    /// (sparse, reflinked where the file system can), the formats QEMU reads but VMs should not run on converted to
    /// qcow2. Returns the pool file relative to machines/.</summary>
    private string ImportImage(string image)
    {
        if (!File.Exists(image)) throw EngineException.Invalid($"no such disk image on the daemon's host: {image}");
        DiskInfo info;
        try { info = QemuImg.Info(image); }
        catch (MachineException e) { throw EngineException.Invalid($"cannot use {image}: {e.Message}"); }
        if (info.BackingFile is not null) throw EngineException.Invalid($"{image} is an overlay on {info.BackingFile}: import a standalone image (qemu-img convert -O qcow2 it first)");
        var fi = new FileInfo(Path.GetFullPath(image));
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{fi.FullName}\n{fi.Length}\n{fi.LastWriteTimeUtc.Ticks}")))[..16];
        string ext = info.Format == "raw" ? "raw" : "qcow2";
        string rel = Path.Combine("pool", $"{key}.{ext}");
        string target = FileOf(rel);
        if (File.Exists(target)) return rel;
        string tmp = target + ".tmp";
        if (QemuImg.Native.Contains(info.Format))
            Tools.Run("cp", ["--sparse=always", "--reflink=auto", image, tmp]);
        else if (QemuImg.Convertible.Contains(info.Format))
            QemuImg.Convert(image, info.Format, tmp);
        else
            throw EngineException.Invalid($"{image}: image format \"{info.Format}\" cannot be used for a VM disk (Vessel takes qcow2 and raw, and converts vmdk, vdi, vpc/vhd and vhdx)");
        File.Move(tmp, target);
        return rel;
    }

    // ---- lifecycle ------------------------------------------------------------------------------------------

    public Task StartAsync(string idOrName, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        await StartCoreAsync(Get(m.Id), null, cancel);
    });

    private async Task<Live> StartCoreAsync(MachineRecord m, string? incoming, CancellationToken cancel)
    {
        if (m.State.Status is MachineStatus.Running or MachineStatus.Paused)
            throw EngineException.Conflict($"VM {m.Name} is already {m.State.Status}");
        string qemu = Tools.Find(Tools.Qemu);
        CheckMemory(m.Config.MemoryMiB);
        AccelChoice accel = m.Config.Request.Accel is null or "" or "auto" ? Accel : AccelProbe.Choose(m.Config.Request.Accel);
        string run = RunOf(m.Id);
        if (Directory.Exists(run)) Directory.Delete(run, true);
        Directory.CreateDirectory(run, (UnixFileMode)0x1c0);
        string dir = DirOf(m.Id);
        var spec = new MachineSpec
        {
            Name = m.Name, Cpus = m.Config.Cpus, MemoryMiB = m.Config.MemoryMiB, Accel = accel.Accel,
            Kernel = m.Config.Kernel is null ? null : Path.Combine(dir, m.Config.Kernel),
            Initrd = m.Config.Initrd is null ? null : Path.Combine(dir, m.Config.Initrd),
            Append = m.Config.Append,
            Disks = m.Config.Disks.Select(d => new DiskSpec(d.Id, FileOf(d.File), d.Format, m.Config.Cache, d.ReadOnly)).ToList(),
            QmpSocket = QmpOf(m.Id), ConsoleSocket = ConsoleOf(m.Id), PidFile = Path.Combine(run, "qemu.pid"), ConsoleLog = LogOf(m.Id),
            Incoming = incoming, LoadVm = incoming is null ? m.State.LoadVm : null,
            Nics = StartNics(m, out bool vhost),
        };
        List<string> argv = [qemu, .. QemuCommand.Build(spec)];
        File.WriteAllLines(Path.Combine(dir, "qemu.cmdline"), argv);
        string errLog = Path.Combine(dir, "qemu.log");
        int pid;
        using (var devnull = new FileStream("/dev/null", FileMode.Open, FileAccess.ReadWrite))
        using (var err = new FileStream(errLog, FileMode.Create, FileAccess.Write, FileShare.ReadWrite))
        {
            var fds = new Dictionary<int, SafeFd>
            {
                [0] = new(devnull.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
                [1] = new(err.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
                [2] = new(err.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
            };
            var env = new List<string> { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C" };
            pid = Spawn.Start(qemu, argv, env, fds, newSession: true);
        }
        ulong start = Processes.StartTime(pid) ?? 0;
        var live = new Live(pid, start, ourChild: true);
        lock (_lock) _live[m.Id] = live;
        Update(m.Id, s => s with
        {
            Status = MachineStatus.Running, Pid = pid, PidStart = start, StartedAt = DateTimeOffset.UtcNow, FinishedAt = null,
            ExitReason = null, ExitCode = null, Error = null, Accel = accel.Accel, LoadVm = null, Vhost = spec.Nics.Count > 0 ? vhost : null,
        });
        try
        {
            live.Qmp = await ConnectQmpAsync(m.Id, live, TimeSpan.FromSeconds(30), cancel);
        }
        catch (Exception e) when (e is MachineException or OperationCanceledException)
        {
            string why = QemuError(errLog);
            try { Processes.Signal(pid, start, 9); } catch (LinuxException) { }
            await ReapAsync(live);
            lock (_lock) _live.Remove(m.Id);
            RemoveTaps(m);
            Update(m.Id, s => s with { Status = MachineStatus.Stopped, Pid = 0, PidStart = 0, FinishedAt = DateTimeOffset.UtcNow, Error = why.Length > 0 ? why : e.Message });
            if (e is OperationCanceledException) throw;
            throw new EngineException(ErrorCodes.Internal, why.Length > 0 ? $"VM {m.Name} did not start: {why}" : $"VM {m.Name} did not start: {e.Message}");
        }
        _log($"vm {m.Name}: started (qemu pid {pid}, {accel.Accel})");
        _events.Publish("vm", "start", m.Id, m.Name, new Dictionary<string, string> { ["accel"] = accel.Accel });
        _ = Task.Run(() => PumpAsync(m.Id, live));
        return live;
    }

    private static string QemuError(string errLog)
    {
        try
        {
            string text = File.ReadAllText(errLog).Trim();
            string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(l => !l.Contains("warning:", StringComparison.Ordinal)).ToArray();
            string line = lines.LastOrDefault() ?? "";
            if (line.Contains("Address already in use", StringComparison.Ordinal)) line += " (a port or socket QEMU needs is in use)";
            return line;
        }
        catch (IOException) { return ""; }
    }

    /// <summary>Waits for QEMU's QMP socket and negotiates; fails as soon as QEMU exits.</summary>
    private async Task<QmpClient> ConnectQmpAsync(string id, Live live, TimeSpan timeout, CancellationToken cancel)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        string path = QmpOf(id);
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (live.OurChild ? Processes.State(live.Pid) is 'Z' or null : !Processes.IsAlive(live.Pid, live.Start))
                throw new MachineException("qemu exited during start-up");
            if (File.Exists(path))
            {
                try
                {
                    using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                    timeoutCts.CancelAfter(TimeSpan.FromSeconds(10));
                    return await QmpClient.ConnectAsync(path, timeoutCts.Token);
                }
                catch (SocketException) { }
                catch (QmpDisconnectedException) { }
            }
            if (DateTime.UtcNow > deadline) throw new MachineException($"QEMU's QMP socket {path} did not answer within {timeout.TotalSeconds:0} s");
            await Task.Delay(20, cancel);
        }
    }

    /// <summary>Follows QMP events until the connection ends, then records the exit.</summary>
    private async Task PumpAsync(string id, Live live)
    {
        QmpClient qmp = live.Qmp!;
        try
        {
            await foreach (QmpEvent e in qmp.Events.ReadAllAsync())
            {
                string name = Name(id);
                switch (e.Name)
                {
                    case "STOP":
                        if (Find(id)?.State.Status == MachineStatus.Running) Update(id, s => s with { Status = MachineStatus.Paused });
                        _events.Publish("vm", "pause", id, name);
                        break;
                    case "RESUME":
                        Update(id, s => s with { Status = MachineStatus.Running });
                        _events.Publish("vm", "unpause", id, name);
                        break;
                    case "SHUTDOWN":
                        live.ShutdownReason = e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("reason", out JsonElement r) ? r.GetString() : null;
                        _events.Publish("vm", "shutdown", id, name, new Dictionary<string, string> { ["reason"] = live.ShutdownReason ?? "" });
                        break;
                    case "POWERDOWN":
                        _events.Publish("vm", "powerdown", id, name);
                        break;
                    case "RESET":
                        _events.Publish("vm", "reset", id, name);
                        break;
                    case "MIGRATION":
                        string status = e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("status", out JsonElement st) ? st.GetString() ?? "" : "";
                        _events.Publish("vm", "migration", id, name, new Dictionary<string, string> { ["status"] = status });
                        break;
                }
            }
        }
        catch (Exception e) when (e is ChannelClosedException or OperationCanceledException) { }
        if (_stop.IsCancellationRequested) return; // the daemon stops; QEMU keeps running
        await ReapAsync(live);
        Exited(id, live, live.Killed ? "killed" : live.ShutdownReason ?? "qemu exited");
    }

    /// <summary>Waits for QEMU to be gone after QMP closed (reaping it when it is our child); SIGKILL after 10 s.</summary>
    private static async Task<int?> ReapAsync(Live live)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (live.OurChild)
            {
                int? code = Processes.TryWaitExit(live.Pid);
                if (code is not null) return code == -1 ? null : code;
            }
            else if (!Processes.IsAlive(live.Pid, live.Start)) return null;
            if (DateTime.UtcNow > deadline)
            {
                try { Processes.Signal(live.Pid, live.Start, 9); } catch (LinuxException) { }
                deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            }
            await Task.Delay(20);
        }
    }

    private void Exited(string id, Live live, string reason)
    {
        lock (_lock)
        {
            if (_live.TryGetValue(id, out Live? l) && l == live) _live.Remove(id);
        }
        MachineRecord? m = Find(id);
        if (m is not null)
        {
            RemoveTaps(m);
            Update(id, s => s with { Status = MachineStatus.Stopped, Pid = 0, PidStart = 0, FinishedAt = DateTimeOffset.UtcNow, ExitReason = reason });
            _log($"vm {m.Name}: stopped ({reason})");
            _events.Publish("vm", "die", id, m.Name, new Dictionary<string, string> { ["reason"] = reason });
            try { Directory.Delete(RunOf(id), true); } catch (IOException) { }
        }
        _ = live.Qmp?.DisposeAsync().AsTask();
        live.Exited.TrySetResult();
    }

    /// <summary>ACPI power-down (QMP system_powerdown), then after <paramref name="timeoutSeconds"/> QMP quit, then SIGKILL.</summary>
    public Task StopAsync(string idOrName, int timeoutSeconds, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        Live? live = LiveOf(m.Id);
        if (live is null) return; // already stopped: docker's stop is idempotent
        QmpClient qmp = live.Qmp ?? throw EngineException.Conflict($"VM {m.Name} is not connected yet");
        try
        {
            if (Find(m.Id)?.State.Status == MachineStatus.Paused) await qmp.ExecuteAsync("cont", null, cancel);
            await qmp.ExecuteAsync("system_powerdown", null, cancel);
            if (await Wait(live, TimeSpan.FromSeconds(Math.Max(0, timeoutSeconds)), cancel)) { _events.Publish("vm", "stop", m.Id, m.Name); return; }
            _log($"vm {m.Name}: no power-down after {timeoutSeconds} s: quitting QEMU");
            await qmp.ExecuteAsync("quit", null, cancel);
        }
        catch (QmpDisconnectedException) { }
        if (!await Wait(live, TimeSpan.FromSeconds(5), cancel))
        {
            live.Killed = true;
            try { Processes.Signal(live.Pid, live.Start, 9); } catch (LinuxException) { }
            await Wait(live, TimeSpan.FromSeconds(10), cancel);
        }
        _events.Publish("vm", "stop", m.Id, m.Name);
    });

    public Task KillAsync(string idOrName, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        Live live = LiveOf(m.Id) ?? throw EngineException.Conflict($"VM {m.Name} is not running");
        live.Killed = true;
        _events.Publish("vm", "kill", m.Id, m.Name, new Dictionary<string, string> { ["signal"] = "SIGKILL" });
        try { Processes.Signal(live.Pid, live.Start, 9); } catch (LinuxException) { }
        await Wait(live, TimeSpan.FromSeconds(15), cancel);
    });

    public Task RestartAsync(string idOrName, int timeoutSeconds, CancellationToken cancel) => GuardAsync(async () =>
    {
        await StopAsync(idOrName, timeoutSeconds, cancel);
        await StartAsync(idOrName, cancel);
        MachineRecord m = Get(idOrName);
        _events.Publish("vm", "restart", m.Id, m.Name);
    });

    public Task PauseAsync(string idOrName, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        QmpClient qmp = QmpOf(m, MachineStatus.Running, "pause");
        await qmp.ExecuteAsync("stop", null, cancel);
        Update(m.Id, s => s with { Status = MachineStatus.Paused });
    });

    public Task ResumeAsync(string idOrName, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        QmpClient qmp = QmpOf(m, MachineStatus.Paused, "resume");
        await qmp.ExecuteAsync("cont", null, cancel);
        Update(m.Id, s => s with { Status = MachineStatus.Running });
    });

    private QmpClient QmpOf(MachineRecord m, string status, string verb)
    {
        if (m.State.Status != status) throw EngineException.Conflict($"cannot {verb} VM {m.Name}: it is {m.State.Status}");
        return LiveOf(m.Id)?.Qmp ?? throw EngineException.Conflict($"cannot {verb} VM {m.Name}: its QMP connection is not up");
    }

    /// <summary>A QMP command on a running (or paused) VM, for the API and tests.</summary>
    public Task<JsonElement> QmpAsync(string idOrName, string command, JsonObject? args, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        QmpClient qmp = LiveOf(m.Id)?.Qmp ?? throw EngineException.Conflict($"VM {m.Name} is not running");
        return await qmp.ExecuteAsync(command, args, cancel);
    });

    public Task RemoveAsync(string idOrName, bool force, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        if (LiveOf(m.Id) is not null)
        {
            if (!force) throw EngineException.Conflict($"VM {m.Name} is {m.State.Status}: stop it first or remove it with force");
            await KillAsync(m.Id, cancel);
        }
        _db.Write((c, tx) =>
        {
            using SqliteCommand cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM machines WHERE id = $id";
            cmd.Parameters.AddWithValue("$id", m.Id);
            return cmd.ExecuteNonQuery();
        });
        lock (_lock) _all.Remove(m.Id);
        RemoveTaps(m);
        foreach (MachineNicRecord nic in m.Config.Nics) _networks?.DetachTap(nic.Tap);
        try { Directory.Delete(DirOf(m.Id), true); } catch (DirectoryNotFoundException) { }
        try { Directory.Delete(RunOf(m.Id), true); } catch (DirectoryNotFoundException) { }
        CollectPoolQuietly();
        _events.Publish("vm", "destroy", m.Id, m.Name);
    });

    private static async Task<bool> Wait(Live live, TimeSpan timeout, CancellationToken cancel)
    {
        try { await live.Exited.Task.WaitAsync(timeout, cancel); return true; }
        catch (TimeoutException) { return false; }
    }

    private static void CheckMemory(long memMiB)
    {
        long? available = null;
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    available = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException) { }
        if (available is long a && a < memMiB + OverheadMiB)
            throw EngineException.Conflict($"not enough memory: the VM needs {memMiB} MiB (+{OverheadMiB} MiB for QEMU), the host has {a} MiB available (MemAvailable)");
    }

    // ---- reads --------------------------------------------------------------------------------------------

    public IReadOnlyList<MachineSummary> List(bool all)
    {
        List<MachineRecord> list;
        lock (_lock) list = [.. _all.Values];
        return list.Where(m => all || m.State.Status is MachineStatus.Running or MachineStatus.Paused).OrderByDescending(m => m.Created)
            .Select(m => new MachineSummary
            {
                Id = m.Id, Name = m.Name, Created = m.Created, Cpus = m.Config.Cpus, Memory = m.Config.MemoryMiB * 1024 * 1024, State = StateOf(m),
                Source = m.Config.Source,
            }).ToList();
    }

    public MachineInspect Inspect(string idOrName) => Guard(() =>
    {
        MachineRecord m = Get(idOrName);
        var disks = new List<MachineDiskInfo>();
        foreach (MachineDiskRecord d in m.Config.Disks)
        {
            string path = FileOf(d.File);
            DiskInfo? info = null;
            try { info = QemuImg.Info(path); } catch (MachineException) { }
            disks.Add(new MachineDiskInfo(d.Id, path, d.Format, info?.VirtualSize ?? 0, info?.BackingFile, d.ReadOnly));
        }
        List<string>? cmd = null;
        try { cmd = [.. File.ReadAllLines(Path.Combine(DirOf(m.Id), "qemu.cmdline"))]; } catch (IOException) { }
        return new MachineInspect
        {
            Id = m.Id, Name = m.Name, Created = m.Created, State = StateOf(m), Config = m.Config.Request, Disks = disks, Dir = DirOf(m.Id),
            LogPath = LogOf(m.Id), QmpSocket = QmpOf(m.Id), ConsoleSocket = ConsoleOf(m.Id), Command = cmd, Networks = NetworkInfo(m),
        };
    });

    private static MachineStateInfo StateOf(MachineRecord m) => new()
    {
        Status = m.State.Status, Running = m.State.Status is MachineStatus.Running or MachineStatus.Paused, Pid = m.State.Pid,
        StartedAt = m.State.StartedAt, FinishedAt = m.State.FinishedAt, ExitReason = m.State.ExitReason, ExitCode = m.State.ExitCode,
        Error = m.State.Error, Accel = m.State.Accel,
    };

    /// <summary>The console log from the start; with <paramref name="follow"/> also what comes later, until the VM stops.</summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> Logs(string idOrName, bool follow, [EnumeratorCancellation] CancellationToken cancel)
    {
        MachineRecord m = Guard(() => Get(idOrName));
        string path = LogOf(m.Id);
        if (!File.Exists(path)) yield break;
        await using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buf = new byte[64 * 1024];
        while (true)
        {
            int n = await f.ReadAsync(buf, cancel);
            if (n > 0) { yield return buf.AsMemory(0, n).ToArray(); continue; }
            if (!follow) yield break;
            bool active = LiveOf(m.Id) is not null;
            if (!active)
            {
                // One more read: the last bytes may have landed after the previous one.
                n = await f.ReadAsync(buf, cancel);
                if (n > 0) { yield return buf.AsMemory(0, n).ToArray(); continue; }
                yield break;
            }
            await Task.Delay(100, cancel);
        }
    }

    /// <summary>A connection to the serial console (one attach at a time: QEMU's socket chardev serves one client).</summary>
    public async Task<ConsoleSession> AttachConsoleAsync(string idOrName, CancellationToken cancel)
    {
        MachineRecord m = Guard(() => Get(idOrName));
        if (LiveOf(m.Id) is null) throw EngineException.Conflict($"VM {m.Name} is not running");
        // A client that just detached may not be released yet: give it a moment before calling it a conflict.
        for (int i = 0; ; i++)
        {
            lock (_lock)
                if (_consoles.Add(m.Id)) break;
            if (i >= 40) throw EngineException.Conflict($"the console of VM {m.Name} is already attached elsewhere");
            await Task.Delay(50, cancel);
        }
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(ConsoleOf(m.Id)), cancel);
        }
        catch (SocketException e)
        {
            s.Dispose();
            lock (_lock) _consoles.Remove(m.Id);
            throw new EngineException(ErrorCodes.Internal, $"cannot connect to the console of VM {m.Name}: {e.Message}");
        }
        catch
        {
            s.Dispose();
            lock (_lock) _consoles.Remove(m.Id);
            throw;
        }
        return new ConsoleSession(s, () => { lock (_lock) _consoles.Remove(m.Id); });
    }

    public sealed class ConsoleSession(Socket socket, Action release) : IDisposable
    {
        private int _disposed;
        public Socket Socket { get; } = socket;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            Socket.Dispose();
            release();
        }
    }

    // ---- helpers ------------------------------------------------------------------------------------------

    public MachineRecord Get(string idOrName)
    {
        lock (_lock)
        {
            if (_all.TryGetValue(idOrName, out MachineRecord? m)) return m;
            MachineRecord? byName = _all.Values.FirstOrDefault(x => x.Name == idOrName);
            if (byName is not null) return byName;
            var prefix = idOrName.Length > 0 ? _all.Values.Where(x => x.Id.StartsWith(idOrName, StringComparison.Ordinal)).ToList() : [];
            if (prefix.Count == 1) return prefix[0];
            if (prefix.Count > 1) throw EngineException.Conflict($"VM id prefix {idOrName} is ambiguous");
        }
        throw EngineException.NotFound($"no such VM: {idOrName}");
    }

    private MachineRecord? Find(string id)
    {
        lock (_lock) return _all.GetValueOrDefault(id);
    }

    private string Name(string id) => Find(id)?.Name ?? id[..12];

    private Live? LiveOf(string id)
    {
        lock (_lock) return _live.GetValueOrDefault(id);
    }

    private void Update(string id, Func<MachineStateRecord, MachineStateRecord> change)
    {
        lock (_lock)
        {
            if (!_all.TryGetValue(id, out MachineRecord? m)) return;
            Save(m with { State = change(m.State) });
        }
    }

    private void UpdateConfig(string id, Func<MachineConfigRecord, MachineConfigRecord> change)
    {
        lock (_lock)
        {
            if (!_all.TryGetValue(id, out MachineRecord? m)) return;
            MachineRecord next = m with { Config = change(m.Config) };
            _db.Write((c, tx) =>
            {
                using SqliteCommand cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "UPDATE machines SET config = $config WHERE id = $id";
                cmd.Parameters.AddWithValue("$id", id);
                cmd.Parameters.AddWithValue("$config", JsonSerializer.Serialize(next.Config, MachineRecordJson.Default.MachineConfigRecord));
                return cmd.ExecuteNonQuery();
            });
            _all[id] = next;
        }
    }

    private void Save(MachineRecord m)
    {
        lock (_lock)
        {
            _db.Write((c, tx) =>
            {
                using SqliteCommand cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "UPDATE machines SET state = $state WHERE id = $id";
                cmd.Parameters.AddWithValue("$id", m.Id);
                cmd.Parameters.AddWithValue("$state", JsonSerializer.Serialize(m.State, MachineRecordJson.Default.MachineStateRecord));
                return cmd.ExecuteNonQuery();
            });
            if (_all.ContainsKey(m.Id)) _all[m.Id] = m;
        }
    }

    /// <summary>Serialises lifecycle changes of one VM (start vs stop vs snapshot …).</summary>
    private async Task<Releaser> OpLock(string id, CancellationToken cancel)
    {
        SemaphoreSlim sem;
        lock (_lock)
        {
            if (!_opLocks.TryGetValue(id, out sem!)) _opLocks[id] = sem = new SemaphoreSlim(1, 1);
        }
        await sem.WaitAsync(cancel);
        return new Releaser(sem);
    }

    private sealed class Releaser(SemaphoreSlim sem) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() { sem.Release(); return ValueTask.CompletedTask; }
    }

    private static T Guard<T>(Func<T> f)
    {
        try { return f(); }
        catch (MachineException e) { throw Map(e); }
    }

    private static async Task GuardAsync(Func<Task> f)
    {
        try { await f(); }
        catch (MachineException e) { throw Map(e); }
    }

    private static async Task<T> GuardAsync<T>(Func<Task<T>> f)
    {
        try { return await f(); }
        catch (MachineException e) { throw Map(e); }
    }

    private static EngineException Map(MachineException e) => new(e.Kind switch
    {
        MachineErrorKind.Invalid => ErrorCodes.Invalid,
        MachineErrorKind.NotFound => ErrorCodes.NotFound,
        MachineErrorKind.Conflict => ErrorCodes.Conflict,
        _ => ErrorCodes.Internal,
    }, e.Message, e);

    /// <summary>The daemon stops: QMP connections close, QEMU processes keep running (the next daemon re-adopts them).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        List<Live> live;
        lock (_lock) live = [.. _live.Values];
        foreach (Live l in live)
            if (l.Qmp is not null)
                try { l.Qmp.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
