using Vessel.Api;

namespace Vessel.DockerApi;

/// <summary>A container's health in docker's shapes: inspect's <c>State.Health</c> (docker-compose's
/// <c>depends_on: condition: service_healthy</c> reads it) and the "(healthy)" of docker ps's STATUS.</summary>
internal static class HealthState
{
    /// <summary>State.Health, or null when the container has no health check (docker leaves it out then).</summary>
    public static JsonObject? Json(ContainerHealth? h) => h is null ? null : new JsonObject
    {
        ["Status"] = h.Status, ["FailingStreak"] = h.FailingStreak,
        ["Log"] = new JsonArray(h.Log.Select(p => (JsonNode?)new JsonObject
        {
            ["Start"] = Http.Time(p.Start), ["End"] = Http.Time(p.End), ["ExitCode"] = p.ExitCode, ["Output"] = p.Output,
        }).ToArray()),
    };

    /// <summary>" (healthy)", " (unhealthy)", " (health: starting)" after "Up …", as docker ps prints it.</summary>
    public static string Suffix(ContainerHealth? h) => h?.Status switch
    {
        null => "",
        "starting" => " (health: starting)",
        var s => $" ({s})",
    };
}
