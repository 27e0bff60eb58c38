using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary><c>POST /v1/containers/{id}/execs</c>: an exec instance, started later by <c>POST /v1/execs/{id}/start</c>
/// (docker's two steps, so that the stream request carries no body).</summary>
public sealed record ExecCreateRequest
{
    public required List<string> Cmd { get; init; }
    public List<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    /// <summary>A pseudo-terminal for the process (its output is then all stdout).</summary>
    public bool Tty { get; init; }
    /// <summary>Keep stdin open: the client's stdin reaches the process (and its end closes it, without a tty).</summary>
    public bool OpenStdin { get; init; }
}

public sealed record ExecCreateResponse(string Id);

/// <summary><c>GET /v1/execs/{id}</c>.</summary>
public sealed record ExecInspect
{
    public required string Id { get; init; }
    public required string ContainerId { get; init; }
    public required List<string> Cmd { get; init; }
    public bool Tty { get; init; }
    public bool OpenStdin { get; init; }
    public bool Running { get; init; }
    public int? ExitCode { get; init; }
    public int Pid { get; init; }
}

/// <summary>The last frame (stream 4) of an attach or exec stream: how it ended.</summary>
public sealed record StdioEndMessage
{
    /// <summary>The container's (attach) or the process's (exec) exit code, when it ended.</summary>
    public int? ExitCode { get; init; }
    /// <summary>The client typed the detach keys: the process goes on.</summary>
    public bool Detached { get; init; }
    public string? Error { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ExecCreateRequest))]
[JsonSerializable(typeof(ExecCreateResponse))]
[JsonSerializable(typeof(ExecInspect))]
[JsonSerializable(typeof(StdioEndMessage))]
public sealed partial class StdioJson : JsonSerializerContext;
