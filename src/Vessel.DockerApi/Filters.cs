using System.Text.Json;
using Vessel.Engine;

namespace Vessel.DockerApi;

/// <summary>docker's <c>filters</c> query parameter: a JSON object of key → values, either
/// <c>{"key": {"value": true}}</c> (what the CLI sends) or <c>{"key": ["value"]}</c> (older clients, docker-py).
/// Values of one key are OR-ed, keys AND-ed. Each endpoint says which keys it knows; others are refused.</summary>
internal sealed class Filters
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public static Filters Parse(HttpContext ctx, params string[] known)
    {
        var f = new Filters();
        string? raw = Http.Query(ctx, "filters") ?? Http.Query(ctx, "filter");
        if (string.IsNullOrWhiteSpace(raw)) return f;
        JsonElement root;
        try { root = JsonDocument.Parse(raw).RootElement; }
        catch (JsonException e) { throw EngineException.Invalid($"invalid filters {raw}: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw EngineException.Invalid($"invalid filters {raw}: expected a JSON object");
        foreach (JsonProperty p in root.EnumerateObject())
        {
            if (!known.Contains(p.Name))
                throw EngineException.Invalid($"invalid filter '{p.Name}'" + (known.Length > 0 ? $" (Vessel knows: {string.Join(", ", known)})" : ""));
            var list = f._values.TryGetValue(p.Name, out var l) ? l : f._values[p.Name] = [];
            if (p.Value.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty v in p.Value.EnumerateObject())
                    if (v.Value.ValueKind != JsonValueKind.False) list.Add(v.Name);
            }
            else if (p.Value.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement v in p.Value.EnumerateArray()) list.Add(v.ToString());
            }
            else list.Add(p.Value.ToString());
        }
        return f;
    }

    public bool Has(string key) => _values.ContainsKey(key);

    /// <summary>Every value as key=value, for engine services that take docker's filters in that form.</summary>
    public IEnumerable<string> Pairs() => _values.SelectMany(kv => kv.Value.Select(v => $"{kv.Key}={v}"));

    public IReadOnlyList<string> Get(string key) => _values.TryGetValue(key, out var l) ? l : [];

    /// <summary>True when the key is absent or one of its values satisfies <paramref name="match"/>.</summary>
    public bool Match(string key, Func<string, bool> match) => !_values.TryGetValue(key, out var l) || l.Any(match);

    /// <summary>label=key or label=key=value against a container's or image's labels.</summary>
    public bool MatchLabels(IReadOnlyDictionary<string, string>? labels)
    {
        if (!_values.TryGetValue("label", out var l)) return true;
        return l.All(want =>
        {
            int eq = want.IndexOf('=');
            if (labels is null) return false;
            return eq < 0 ? labels.ContainsKey(want) : labels.TryGetValue(want[..eq], out var v) && v == want[(eq + 1)..];
        });
    }
}

/// <summary>Image names as docker shows them: <c>docker.io/library/busybox:latest</c> → <c>busybox:latest</c>.</summary>
internal static class Names
{
    public static string Familiar(string name)
    {
        if (name.StartsWith("docker.io/library/", StringComparison.Ordinal)) return name["docker.io/library/".Length..];
        if (name.StartsWith("docker.io/", StringComparison.Ordinal)) return name["docker.io/".Length..];
        return name;
    }

    /// <summary>The 12 hex digits docker shows for an id or digest.</summary>
    public static string Short(string id)
    {
        string hex = id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..] : id;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>docker's units.HumanDuration ("Up 3 seconds", "Exited (0) About a minute ago").</summary>
    public static string HumanDuration(TimeSpan d)
    {
        double s = d.TotalSeconds;
        if (s < 1) return "Less than a second";
        if (s < 2) return "1 second";
        if (s < 60) return $"{(int)s} seconds";
        double m = d.TotalMinutes;
        if (m < 2) return "About a minute";
        if (m < 60) return $"{(int)m} minutes";
        double h = d.TotalHours;
        if (h < 2) return "About an hour";
        if (h < 48) return $"{(int)h} hours";
        if (h < 24 * 7 * 2) return $"{(int)(h / 24)} days";
        if (h < 24 * 30 * 2) return $"{(int)(h / 24 / 7)} weeks";
        if (h < 24 * 365 * 2) return $"{(int)(h / 24 / 30)} months";
        return $"{(int)(h / 24 / 365)} years";
    }
}
