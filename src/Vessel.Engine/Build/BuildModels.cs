namespace Vessel.Engine.Build;

/// <summary>What to build: the options of <c>vessel build</c> (and of the Docker API's POST /build).</summary>
public sealed record BuildOptions
{
    /// <summary>The Containerfile's path inside the context (default: Containerfile, else Dockerfile).</summary>
    public string? Dockerfile { get; init; }
    /// <summary>The Containerfile's text when it does not come from the context (<c>-f -</c>).</summary>
    public string? DockerfileContent { get; init; }
    /// <summary><see cref="Dockerfile"/> is a file the client added to the context only to carry the
    /// Containerfile (<c>-f -</c>): it is read, then removed before any COPY sees it.</summary>
    public bool DockerfileFromContextThenRemove { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>--build-arg values (a null value: declared by the user without one, so unset).</summary>
    public IReadOnlyDictionary<string, string?> BuildArgs { get; init; } = new Dictionary<string, string?>();
    public string? Target { get; init; }
    public bool NoCache { get; init; }
    /// <summary>Pull base images even when they are present.</summary>
    public bool Pull { get; init; }
    /// <summary>Labels added to the final image.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

/// <summary>What a build reports, in BuildKit's plain-progress terms: a step starts (<see cref="Kind"/> "step",
/// its name in <see cref="Text"/>), prints output lines ("log"), is "cached", "done" (with <see cref="Elapsed"/>)
/// or fails ("error"); "warning" lines belong to no step (Step 0).</summary>
public sealed record BuildEvent(string Kind, int Step, string? Text = null, TimeSpan? Elapsed = null, TimeSpan? At = null);

/// <summary>The built image.</summary>
public sealed record BuildResult(string Id, string Digest, IReadOnlyList<string> Names, int Steps, int Cached);

/// <summary>A build failed in a way the user must fix (a Containerfile error, a failing RUN, a missing file).</summary>
public sealed class BuildException(string message) : Exception(message);
