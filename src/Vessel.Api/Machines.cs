using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary><c>POST /v1/vms</c>: what `vessel vm create` asks for. Paths are on the daemon's host.</summary>
public sealed record MachineCreateRequest
{
    public required string Name { get; init; }
    /// <summary>A disk image to boot (qcow2 or raw as is; vmdk, vdi, vhd, vhdx converted to qcow2 on import).</summary>
    public string? Image { get; init; }
    /// <summary>Direct boot: a kernel, an optional initrd and the kernel command line.</summary>
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? Append { get; init; }
    /// <summary>Generate a busybox initramfs with the kernel's virtio modules (src/Vessel.Machines/Boot/Initramfs.cs).</summary>
    public bool Initramfs { get; init; }
    public int? Cpus { get; init; }
    /// <summary>Memory in bytes (default 512 MiB).</summary>
    public long? Memory { get; init; }
    /// <summary>Disk size in bytes: a new empty disk, or the image's disk grown to it.</summary>
    public long? DiskSize { get; init; }
    public string? Cache { get; init; }
    /// <summary>auto (probe), kvm or tcg.</summary>
    public string? Accel { get; init; }
    public List<string>? Networks { get; init; }
    /// <summary>cloud-init user-data (the file's content) and SSH public keys for a NoCloud seed.</summary>
    public string? UserData { get; init; }
    public List<string>? SshKeys { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
}

public sealed record MachineCreateResponse(string Id, string Name, List<string> Warnings);

/// <summary>Values of <see cref="MachineStateInfo.Status"/>.</summary>
public static class MachineStatus
{
    public const string Created = "created";
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Stopped = "stopped";
}

public sealed record MachineStateInfo
{
    public required string Status { get; init; }
    public bool Running { get; init; }
    /// <summary>The QEMU process.</summary>
    public int Pid { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>Why QEMU ended: guest-shutdown, host-qmp-quit, host-signal, guest-panic, killed, … (QMP SHUTDOWN reason).</summary>
    public string? ExitReason { get; init; }
    public int? ExitCode { get; init; }
    public string? Error { get; init; }
    /// <summary>The accelerator this run uses (kvm or tcg).</summary>
    public string? Accel { get; init; }
}

public sealed record MachineDiskInfo(string Name, string Path, string Format, long Size, string? Backing, bool ReadOnly);

public sealed record MachineSummary
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required int Cpus { get; init; }
    public required long Memory { get; init; }
    public required MachineStateInfo State { get; init; }
    public string? Source { get; init; }
}

public sealed record MachineInspect
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required MachineStateInfo State { get; init; }
    public required MachineCreateRequest Config { get; init; }
    public required List<MachineDiskInfo> Disks { get; init; }
    public required string Dir { get; init; }
    public required string LogPath { get; init; }
    public required string QmpSocket { get; init; }
    public required string ConsoleSocket { get; init; }
    public List<string>? Command { get; init; }
    /// <summary>The VM's NICs: network, MAC, the address IPAM reserved (the guest gets it by DHCP), tap device.</summary>
    public List<MachineNetworkInfo>? Networks { get; init; }
}

public sealed record MachineNetworkInfo
{
    public required string Network { get; init; }
    public required string MacAddress { get; init; }
    public string? IpAddress { get; init; }
    public int PrefixLen { get; init; }
    public string? Gateway { get; init; }
    /// <summary>The network's DNS server (user networks: the gateway), as DHCP hands it out.</summary>
    public string? Dns { get; init; }
    public required string Tap { get; init; }
    /// <summary>QEMU uses vhost-net for this NIC (set while running).</summary>
    public bool? Vhost { get; init; }
}

public sealed record MachineSnapshotRequest(string Name);
public sealed record MachineSnapshotInfo(string Name, DateTimeOffset Created, bool Memory, long VmStateSize);
public sealed record MachineCloneRequest(string Name);
public sealed record MachineResizeRequest(long Size);
/// <summary><c>POST /v1/vms/{id}/migrate</c>: the API socket of the Vessel daemon to move the VM to.</summary>
public sealed record MachineMigrateRequest(string To);
/// <summary>What the target daemon answers to <c>POST /v1/vms/incoming</c>: where the source QEMU sends the state.</summary>
public sealed record MachineIncomingResponse(string Id, string Name, string Uri);
/// <summary><c>POST /v1/vms/incoming</c> (daemon to daemon, same host): the VM's id and name, its directory and pool
/// in the source's state root (the target hard-links the files: shared storage), and the source's config record.</summary>
public sealed record MachineIncomingRequest
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string SourceDir { get; init; }
    public required string SourcePool { get; init; }
    public required string Config { get; init; }
}

/// <summary>The accelerator the daemon probed (<c>GET /v1/system/info</c>).</summary>
public sealed record AccelInfo(string Accel, string Reason);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(MachineCreateRequest))]
[JsonSerializable(typeof(MachineCreateResponse))]
[JsonSerializable(typeof(MachineSummary))]
[JsonSerializable(typeof(List<MachineSummary>))]
[JsonSerializable(typeof(MachineInspect))]
[JsonSerializable(typeof(MachineSnapshotRequest))]
[JsonSerializable(typeof(MachineSnapshotInfo))]
[JsonSerializable(typeof(List<MachineSnapshotInfo>))]
[JsonSerializable(typeof(MachineCloneRequest))]
[JsonSerializable(typeof(MachineResizeRequest))]
[JsonSerializable(typeof(MachineMigrateRequest))]
[JsonSerializable(typeof(MachineIncomingRequest))]
[JsonSerializable(typeof(MachineIncomingResponse))]
[JsonSerializable(typeof(AccelInfo))]
public sealed partial class MachineJson : JsonSerializerContext;
