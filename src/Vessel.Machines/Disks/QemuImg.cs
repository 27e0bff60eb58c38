using System.Globalization;
using System.Text.Json;

namespace Vessel.Machines.Disks;

/// <summary>What qemu-img info says about an image.</summary>
public sealed record DiskInfo(string Format, long VirtualSize, long ActualSize, string? BackingFile, string? BackingFormat);

public sealed record DiskSnapshot(string Id, string Name, long VmStateSize, DateTimeOffset Date);

/// <summary>Disk images through qemu-img (qemu-utils): probe, create (optionally on a backing file: a linked clone
/// is a new qcow2 whose backing is the base, so it costs the same whatever the base's size), convert, resize and
/// internal qcow2 snapshots.</summary>
public static class QemuImg
{
    /// <summary>Formats a VM disk may be used in as is.</summary>
    public static readonly string[] Native = ["qcow2", "raw"];
    /// <summary>Formats converted to qcow2 on import.</summary>
    public static readonly string[] Convertible = ["vmdk", "vdi", "vpc", "vhdx", "qed", "parallels", "dmg", "cloop"];

    public static DiskInfo Info(string path)
    {
        if (!File.Exists(path)) throw new MachineException($"no such disk image: {path}", MachineErrorKind.NotFound);
        Tools.Result r;
        try { r = Tools.Run(Tools.QemuImg, ["info", "--output=json", "-U", path], TimeSpan.FromMinutes(1)); }
        catch (MachineException e) when (e.Kind == MachineErrorKind.Failed)
        {
            throw new MachineException($"{path}: qemu-img cannot read this image ({e.Message})", MachineErrorKind.Invalid, e);
        }
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        JsonElement root = doc.RootElement;
        return new DiskInfo(root.GetProperty("format").GetString() ?? "raw", root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("actual-size", out JsonElement a) ? a.GetInt64() : 0,
            root.TryGetProperty("backing-filename", out JsonElement b) ? b.GetString() : null,
            root.TryGetProperty("backing-filename-format", out JsonElement bf) ? bf.GetString() : null);
    }

    /// <summary>Creates a qcow2 image of <paramref name="size"/> bytes, or (with <paramref name="backing"/>) an
    /// overlay on that image; size 0 with a backing file: the backing file's size.</summary>
    public static void Create(string path, long size, string? backing = null, string? backingFormat = null)
    {
        var args = new List<string> { "create", "-q", "-f", "qcow2" };
        if (backing is not null) { args.AddRange(["-b", backing, "-F", backingFormat ?? Info(backing).Format]); }
        args.Add(path);
        if (size > 0 || backing is null) args.Add(size.ToString(CultureInfo.InvariantCulture));
        Tools.Run(Tools.QemuImg, args, TimeSpan.FromMinutes(5));
    }

    /// <summary>Converts any format qemu-img reads into a standalone qcow2 (backing chains are flattened).</summary>
    public static void Convert(string source, string sourceFormat, string target) =>
        Tools.Run(Tools.QemuImg, ["convert", "-q", "-f", sourceFormat, "-O", "qcow2", source, target]);

    public static void Resize(string path, long size) =>
        Tools.Run(Tools.QemuImg, ["resize", "-q", path, size.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromMinutes(5));

    public static void SnapshotCreate(string path, string name) => Tools.Run(Tools.QemuImg, ["snapshot", "-c", name, path], TimeSpan.FromMinutes(5));
    public static void SnapshotApply(string path, string name) => Tools.Run(Tools.QemuImg, ["snapshot", "-a", name, path], TimeSpan.FromMinutes(5));
    public static void SnapshotDelete(string path, string name) => Tools.Run(Tools.QemuImg, ["snapshot", "-d", name, path], TimeSpan.FromMinutes(5));

    public static IReadOnlyList<DiskSnapshot> Snapshots(string path)
    {
        Tools.Result r = Tools.Run(Tools.QemuImg, ["info", "--output=json", "-U", path], TimeSpan.FromMinutes(1));
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        if (!doc.RootElement.TryGetProperty("snapshots", out JsonElement snaps)) return [];
        return snaps.EnumerateArray().Select(s => new DiskSnapshot(s.GetProperty("id").GetString() ?? "", s.GetProperty("name").GetString() ?? "",
            s.TryGetProperty("vm-state-size", out JsonElement v) ? v.GetInt64() : 0,
            DateTimeOffset.FromUnixTimeSeconds(s.TryGetProperty("date-sec", out JsonElement d) ? d.GetInt64() : 0))).ToList();
    }
}
