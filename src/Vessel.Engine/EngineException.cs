using Vessel.Api;

namespace Vessel.Engine;

/// <summary>A failure the engine explains to its caller: a message fit for one line and an API error code
/// (<see cref="ErrorCodes"/>). Anything else reaching the API is an internal error.</summary>
public class EngineException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    public static EngineException NotFound(string message) => new(ErrorCodes.NotFound, message);
    public static EngineException Conflict(string message) => new(ErrorCodes.Conflict, message);
    public static EngineException Invalid(string message) => new(ErrorCodes.Invalid, message);
}
