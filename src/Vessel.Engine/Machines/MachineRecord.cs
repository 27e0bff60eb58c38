using System.Text.Json.Serialization;
using Vessel.Api;

namespace Vessel.Engine.Machines;

/// <summary>One disk of a VM: a file in its directory (or, for a base, in the pool) and how QEMU opens it.</summary>
public sealed record MachineDiskRecord(string Id, string File, string Format, bool ReadOnly);

/// <summary>One NIC: the network's name, the tap device made at each start (vsl…, 15 bytes at most) and the MAC,
/// both derived from the VM id so they never change.</summary>
public sealed record MachineNicRecord(string Network, string Tap, string Mac);

/// <summary>The <c>config</c> column of the machines table: what create decided.</summary>
public sealed record MachineConfigRecord
{
    public required MachineCreateRequest Request { get; init; }
    public int Cpus { get; init; } = 1;
    public long MemoryMiB { get; init; } = 512;
    public string Cache { get; init; } = "writeback";
    /// <summary>Copies of the kernel and initrd in the VM's directory (relative file names).</summary>
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public string? Append { get; init; }
    public List<MachineDiskRecord> Disks { get; init; } = [];
    /// <summary>NICs: a tap on a bridge network each (docs/machines.md#networking).</summary>
    public List<MachineNicRecord> Nics { get; init; } = [];
    public string? Source { get; init; }
}

/// <summary>The <c>state</c> column.</summary>
public sealed record MachineStateRecord
{
    public string Status { get; init; } = MachineStatus.Created;
    public int Pid { get; init; }
    public ulong PidStart { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public string? ExitReason { get; init; }
    public int? ExitCode { get; init; }
    public string? Error { get; init; }
    public string? Accel { get; init; }
    /// <summary>The next start resumes this memory+disk snapshot (set by a restore while stopped).</summary>
    public string? LoadVm { get; init; }
    /// <summary>QEMU runs its NICs with vhost-net.</summary>
    public bool? Vhost { get; init; }
}

public sealed record MachineRecord(string Id, string Name, DateTimeOffset Created, MachineConfigRecord Config, MachineStateRecord State);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MachineConfigRecord))]
[JsonSerializable(typeof(MachineStateRecord))]
internal sealed partial class MachineRecordJson : JsonSerializerContext;
