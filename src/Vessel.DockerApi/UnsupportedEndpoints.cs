namespace Vessel.DockerApi;

/// <summary>Docker API endpoints Vessel does not serve (yet): each answers 501 with a message naming the feature,
/// so clients print a clear error instead of "page not found" or hanging.</summary>
internal static class UnsupportedEndpoints
{
    private static readonly (string Method, string Pattern, string What)[] Routes =
    [
        ("GET", "/containers/{id}/export", "exporting a container (docker export)"),
        ("GET", "/containers/{id}/attach/ws", "attaching over a websocket"),
        ("POST", "/build/prune", "the build cache"),
        ("POST", "/session", "BuildKit sessions"),
        ("GET", "/images/search", "searching a registry (docker search)"),
        ("GET", "/plugins", "plugins"),
        ("GET", "/distribution/{**name}", "distribution inspection"),
        ("GET", "/swarm", "swarm mode"),
        ("POST", "/swarm/init", "swarm mode"),
        ("POST", "/swarm/join", "swarm mode"),
        ("GET", "/nodes", "swarm mode"),
        ("GET", "/services", "swarm mode"),
        ("GET", "/tasks", "swarm mode"),
        ("GET", "/secrets", "swarm mode"),
        ("GET", "/configs", "swarm mode"),
    ];

    public static void Map(WebApplication app)
    {
        foreach (var (method, pattern, what) in Routes)
            app.MapMethods(pattern, [method], _ => throw DockerErrors.NotSupported(what));
    }
}
