using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.DockerApi;

/// <summary>Errors in docker's shape. The engine's codes map to the statuses dockerd uses; what Vessel does not
/// do is <see cref="NotSupported"/> (501, like dockerd's errdefs.NotImplemented).</summary>
internal static class DockerErrors
{
    public const string NotImplemented = "not_implemented";
    public const string NotModified = "not_modified";
    /// <summary>403, dockerd's errdefs.Forbidden (removing a pre-defined network).</summary>
    public const string Forbidden = "forbidden";

    public static EngineException NotSupported(string what) => new(NotImplemented, $"{what} is not supported by Vessel");

    public static int StatusOf(string code) => code switch
    {
        ErrorCodes.NotFound => 404,
        ErrorCodes.Conflict or ErrorCodes.Cancelled => 409,
        ErrorCodes.Invalid => 400,
        ErrorCodes.Unauthorized => 401,
        ErrorCodes.RateLimited => 429,
        ErrorCodes.Unavailable => 502,
        ErrorCodes.MethodNotAllowed => 405,
        NotImplemented => 501,
        Forbidden => 403,
        _ => 500,
    };

    public static async Task WriteAsync(HttpContext ctx, int status, string message)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject { ["message"] = message }.ToJsonString() + "\n");
    }
}

/// <summary>Every failure becomes <c>{"message": "…"}</c> with its status; a framework 404/405 gets one too.</summary>
internal sealed class DockerErrorMiddleware(RequestDelegate next, ILogger<DockerErrorMiddleware> log, bool debug)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        string path = ctx.Request.Path.Value ?? "";
        try
        {
            await next(ctx);
            if (!ctx.Response.HasStarted && ctx.Response.StatusCode is 404 or 405 && ctx.GetEndpoint() is null)
            {
                string msg = ctx.Response.StatusCode == 404
                    ? $"page not found: {ctx.Request.Method} {path} is not part of the Docker API that Vessel serves"
                    : $"method {ctx.Request.Method} is not allowed on {path}";
                await DockerErrors.WriteAsync(ctx, ctx.Response.StatusCode, msg);
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (Exception e)
        {
            (int status, string msg) = e switch
            {
                EngineException ee => (DockerErrors.StatusOf(ee.Code), ee.Message),
                BadHttpRequestException b => (b.StatusCode, b.Message),
                JsonException j => (400, $"invalid JSON: {j.Message}"),
                _ => (500, OneLine(e)),
            };
            // docker-py (docker-compose) tells a missing image from other 404s by dockerd's capitalised "No such image".
            if (status == 404 && msg.StartsWith("no such image:", StringComparison.Ordinal)) msg = "N" + msg[1..];
            if (status >= 500 && status != 501) log.LogError("docker API {Method} {Path}: {Message}", ctx.Request.Method, path, OneLine(e));
            if (!ctx.Response.HasStarted) await DockerErrors.WriteAsync(ctx, status, msg);
            else ctx.Abort();
        }
        finally
        {
            if (debug)
                log.LogDebug("docker {Method} {Path}{Query} {Status} {Ms:0.0}ms", ctx.Request.Method, path, ctx.Request.QueryString,
                    ctx.Response.StatusCode, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }

    private static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ").Trim() is { Length: > 0 } m ? m : e.GetType().Name;
}

/// <summary>Reading docker's requests and writing its answers.</summary>
internal static class Http
{
    public static Task Json(HttpContext ctx, int status, JsonNode? value)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync((value?.ToJsonString() ?? "null") + "\n", ctx.RequestAborted);
    }

    /// <summary>A JSON body, or null when there is none (docker clients often send no body).</summary>
    public static async Task<JsonElement?> Body(HttpContext ctx)
    {
        if (ctx.Request.ContentLength is > 16 * 1024 * 1024) throw EngineException.Invalid("request body is larger than 16 MiB");
        using var ms = new MemoryStream();
        if (ctx.Request.Headers[UpgradeBodyPipe.BodyHeader].FirstOrDefault() is { Length: > 0 } moved)
        {
            try { ms.Write(Convert.FromBase64String(moved)); }
            catch (FormatException) { throw EngineException.Invalid("bad request body"); }
        }
        else await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted);
        if (ms.Length == 0) return null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(ms.ToArray());
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw EngineException.Invalid($"invalid JSON body: {e.Message}"); }
    }

    public static string? Query(HttpContext ctx, string key) => ctx.Request.Query[key].FirstOrDefault();

    /// <summary>docker's boolean query values: 1/true/True/yes (anything else but 0/false/empty is true in dockerd).</summary>
    public static bool Bool(HttpContext ctx, string key)
    {
        string? v = Query(ctx, key);
        return v is not (null or "" or "0" or "false" or "False" or "FALSE" or "no");
    }

    public static int? Int(HttpContext ctx, string key)
    {
        string? v = Query(ctx, key);
        if (string.IsNullOrEmpty(v)) return null;
        return int.TryParse(v, out int n) ? n : throw EngineException.Invalid($"{key}={v}: expected an integer");
    }

    public static string Route(HttpContext ctx, string key) =>
        Uri.UnescapeDataString(ctx.Request.RouteValues[key] as string ?? throw EngineException.Invalid($"{key} is missing"));

    public static void NoBuffering(HttpContext ctx) => ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

    /// <summary>Starts a streamed answer (JSON messages, logs): headers go out at once so the client sees the stream begin.</summary>
    public static async Task StartStream(HttpContext ctx, string contentType)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = contentType;
        NoBuffering(ctx);
        await ctx.Response.StartAsync(ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    public static async Task Line(HttpContext ctx, JsonNode node, CancellationToken ct)
    {
        await ctx.Response.WriteAsync(node.ToJsonString() + "\n", ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    /// <summary>Go's time.Time zero value, which docker prints for "never".</summary>
    public const string ZeroTime = "0001-01-01T00:00:00Z";

    public static string Time(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture) : ZeroTime;

    public static JsonArray Array(IEnumerable<string>? items) => new(items?.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray() ?? []);

    public static JsonObject Map(IEnumerable<KeyValuePair<string, string>>? items)
    {
        var o = new JsonObject();
        foreach (var (k, v) in items ?? []) o[k] = v;
        return o;
    }
}
