using System.Text.Json.Serialization;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.State;

/// <summary>What the runtime keeps of a container between invocations: `ROOT/ID/state.json`, written
/// atomically. The config is copied in, so later commands do not depend on the bundle still existing.</summary>
public sealed class StoredContainer
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("pid")] public int Pid { get; set; }
    /// <summary>The init's start time in clock ticks, so a reused pid is never taken for the init.</summary>
    [JsonPropertyName("startTime")] public ulong StartTime { get; set; }
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("rootfs")] public string Rootfs { get; set; } = "";
    [JsonPropertyName("created")] public DateTime Created { get; set; }
    [JsonPropertyName("owner")] public string Owner { get; set; } = "";
    [JsonPropertyName("cgroupsPath")] public string CgroupsPath { get; set; } = "";
    [JsonPropertyName("config")] public RuntimeSpec Config { get; set; } = new();
}
