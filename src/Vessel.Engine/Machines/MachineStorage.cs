using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vessel.Api;
using Vessel.Machines;
using Vessel.Machines.Disks;

namespace Vessel.Engine.Machines;

/// <summary>Disks of VMs: linked clones, snapshots, resize.</summary>
public sealed partial class MachineService
{
    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]
    private static partial Regex SnapshotName();

    private MachineDiskRecord RootDisk(MachineRecord m, string what) =>
        m.Config.Disks.FirstOrDefault(d => d.Id == "disk0" && !d.ReadOnly)
        ?? throw EngineException.Invalid($"VM {m.Name} has no disk to {what} (create it from an image or with --disk SIZE)");

    /// <summary>A linked clone: the source's disk becomes a read-only base in the pool (a rename), and source and
    /// clone each get a new qcow2 overlay on it — two small files whatever the disk's size. The source must be
    /// stopped (its disk must not change under the clone).</summary>
    public Task<MachineCreateResponse> CloneAsync(string idOrName, string newName, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord src = Get(idOrName);
        await using var _ = await OpLock(src.Id, cancel);
        src = Get(src.Id);
        if (src.State.Status is MachineStatus.Running or MachineStatus.Paused)
            throw EngineException.Conflict($"VM {src.Name} is {src.State.Status}: stop it before cloning (a linked clone needs a disk that no longer changes)");
        string id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        MachineCreateResponse r = CreateCore(src.Config.Request with { Name = newName, Image = null, Kernel = null, Append = null, Initrd = null, Initramfs = false, UserData = null, SshKeys = null },
            id, dir => CloneDisks(src, id, dir));
        UpdateConfig(id, c => c with
        {
            Request = src.Config.Request with { Name = newName }, Kernel = src.Config.Kernel, Initrd = src.Config.Initrd, Append = src.Config.Append?.Replace(
                $"vessel.hostname={src.Name}", $"vessel.hostname={newName}", StringComparison.Ordinal), Source = $"clone of {src.Name}",
        });
        _events.Publish("vm", "clone", id, newName, new Dictionary<string, string> { ["source"] = src.Name });
        return r;
    });

    private List<MachineDiskRecord> CloneDisks(MachineRecord src, string id, string dir)
    {
        string srcDir = DirOf(src.Id);
        foreach (string? f in new[] { src.Config.Kernel, src.Config.Initrd })
            if (f is not null) File.Copy(Path.Combine(srcDir, f), Path.Combine(dir, f));
        var disks = new List<MachineDiskRecord>();
        foreach (MachineDiskRecord d in src.Config.Disks)
        {
            if (d.ReadOnly)
            {
                string name = Path.GetFileName(d.File);
                File.Copy(FileOf(d.File), Path.Combine(dir, name));
                disks.Add(d with { File = Path.Combine(id, name) });
                continue;
            }
            // Freeze the source's disk into the pool, then an overlay for each side.
            string frozen = Path.Combine("pool", $"{src.Id[..12]}-{id[..12]}-{d.Id}.qcow2");
            string srcFile = FileOf(d.File);
            File.Move(srcFile, FileOf(frozen));
            try
            {
                QemuImg.Create(srcFile, 0, Path.Combine("..", frozen), d.Format);
            }
            catch
            {
                File.Move(FileOf(frozen), srcFile);
                throw;
            }
            File.SetUnixFileMode(FileOf(frozen), UnixFileMode.UserRead | UnixFileMode.GroupRead);
            string mine = Path.Combine(dir, Path.GetFileName(d.File));
            QemuImg.Create(mine, 0, Path.Combine("..", frozen), d.Format);
            if (d.Format != "qcow2") UpdateDiskFormat(src.Id, d.Id);
            disks.Add(d with { File = Path.Combine(id, Path.GetFileName(d.File)), Format = "qcow2" });
        }
        return disks;
    }

    private void UpdateDiskFormat(string id, string disk) =>
        UpdateConfig(id, c => c with { Disks = c.Disks.Select(x => x.Id == disk ? x with { Format = "qcow2" } : x).ToList() });

    // ---- snapshots ----------------------------------------------------------------------------------------

    /// <summary>Running (or paused): memory + disk through HMP savevm; stopped: disk only (qemu-img snapshot -c).</summary>
    public Task<MachineSnapshotInfo> SnapshotCreateAsync(string idOrName, string name, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        if (!SnapshotName().IsMatch(name ?? "")) throw EngineException.Invalid($"invalid snapshot name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        await using var _ = await OpLock(m.Id, cancel);
        m = Get(m.Id);
        string disk = FileOf(RootDisk(m, "snapshot").File);
        if (QemuImg.Snapshots(disk).Any(s => s.Name == name)) throw EngineException.Conflict($"VM {m.Name} already has a snapshot {name}");
        if (LiveOf(m.Id)?.Qmp is { } qmp) await Hmp(qmp, $"savevm {name}", cancel);
        else QemuImg.SnapshotCreate(disk, name!);
        DiskSnapshot s = QemuImg.Snapshots(disk).Last(x => x.Name == name);
        _events.Publish("vm", "snapshot", m.Id, m.Name, new Dictionary<string, string> { ["snapshot"] = name!, ["memory"] = (s.VmStateSize > 0).ToString().ToLowerInvariant() });
        return new MachineSnapshotInfo(s.Name, s.Date, s.VmStateSize > 0, s.VmStateSize);
    });

    public IReadOnlyList<MachineSnapshotInfo> Snapshots(string idOrName) => Guard(() =>
    {
        MachineRecord m = Get(idOrName);
        MachineDiskRecord? d = m.Config.Disks.FirstOrDefault(x => x.Id == "disk0" && !x.ReadOnly);
        if (d is null) return [];
        return QemuImg.Snapshots(FileOf(d.File)).Select(s => new MachineSnapshotInfo(s.Name, s.Date, s.VmStateSize > 0, s.VmStateSize)).ToList();
    });

    /// <summary>Running: HMP loadvm (memory and disk). Stopped: the disk now (qemu-img snapshot -a), and a snapshot
    /// with memory makes the next start resume from it (-loadvm).</summary>
    public Task SnapshotRestoreAsync(string idOrName, string name, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        m = Get(m.Id);
        string disk = FileOf(RootDisk(m, "restore").File);
        DiskSnapshot s = QemuImg.Snapshots(disk).LastOrDefault(x => x.Name == name) ?? throw EngineException.NotFound($"VM {m.Name} has no snapshot {name}");
        if (LiveOf(m.Id)?.Qmp is { } qmp)
        {
            if (s.VmStateSize == 0) throw EngineException.Conflict($"snapshot {name} of VM {m.Name} has no memory state: stop the VM to restore its disk");
            await Hmp(qmp, $"loadvm {name}", cancel);
        }
        else
        {
            QemuImg.SnapshotApply(disk, name);
            if (s.VmStateSize > 0) Update(m.Id, st => st with { LoadVm = name });
        }
        _events.Publish("vm", "restore", m.Id, m.Name, new Dictionary<string, string> { ["snapshot"] = name });
    });

    public Task SnapshotRemoveAsync(string idOrName, string name, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        m = Get(m.Id);
        string disk = FileOf(RootDisk(m, "snapshot").File);
        if (!QemuImg.Snapshots(disk).Any(x => x.Name == name)) throw EngineException.NotFound($"VM {m.Name} has no snapshot {name}");
        if (LiveOf(m.Id)?.Qmp is { } qmp) await Hmp(qmp, $"delvm {name}", cancel);
        else QemuImg.SnapshotDelete(disk, name);
        if (m.State.LoadVm == name) Update(m.Id, st => st with { LoadVm = null });
        _events.Publish("vm", "snapshot_delete", m.Id, m.Name, new Dictionary<string, string> { ["snapshot"] = name });
    });

    /// <summary>An HMP command through QMP's human-monitor-command. HMP reports failure only as text, so any output
    /// from these commands (which print nothing on success) is the error.</summary>
    private static async Task Hmp(Vessel.Machines.Qmp.QmpClient qmp, string command, CancellationToken cancel)
    {
        JsonElement r = await qmp.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = command }, cancel);
        string output = r.ValueKind == JsonValueKind.String ? r.GetString()!.Trim() : "";
        if (output.Length > 0) throw new EngineException(ErrorCodes.Conflict, $"{command.Split(' ')[0]}: {output.ReplaceLineEndings(" ")}");
    }

    // ---- resize ---------------------------------------------------------------------------------------------

    /// <summary>Grows the root disk: qemu-img resize when stopped, QMP block_resize when running (the guest sees the
    /// new size at once). Shrinking is refused: it loses data.</summary>
    public Task ResizeDiskAsync(string idOrName, long size, CancellationToken cancel) => GuardAsync(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        m = Get(m.Id);
        MachineDiskRecord d = RootDisk(m, "resize");
        string path = FileOf(d.File);
        long current = QemuImg.Info(path).VirtualSize;
        if (size < current) throw EngineException.Invalid($"the disk of VM {m.Name} has {current} bytes: shrinking to {size} would lose data");
        if (size == current) return;
        if (LiveOf(m.Id)?.Qmp is { } qmp) await qmp.ExecuteAsync("block_resize", new JsonObject { ["device"] = d.Id, ["size"] = size }, cancel);
        else QemuImg.Resize(path, size);
        _events.Publish("vm", "resize", m.Id, m.Name, new Dictionary<string, string> { ["size"] = size.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    });
}
