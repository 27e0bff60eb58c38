using Vessel.Images.Content;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Events;
using Vessel.Engine.Images;
using Vessel.Engine.Operations;

namespace Vessel.Daemon;

/// <summary>The /v1 REST API: plain RequestDelegates over the engine, JSON through the source-generated
/// <see cref="ApiJson"/> context (no reflection, NativeAOT-safe). Errors are thrown as
/// <see cref="EngineException"/> and turned into <see cref="ErrorResponse"/> by <see cref="ErrorMiddleware"/>.</summary>
internal static class ApiRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;

        app.MapGet("/v1/version", ctx => Write(ctx, 200, VesselEngine.Version(), ApiJson.Default.VersionResponse));
        app.MapGet("/v1/system/info", ctx => Write(ctx, 200, engine.Info(), ApiJson.Default.SystemInfoResponse));

        app.MapGet("/v1/events", async ctx =>
        {
            IQueryCollection q = ctx.Request.Query;
            long? since = UnixNanos(q["since"], "since");
            long? until = UnixNanos(q["until"], "until");
            EventFilter filter = EventFilter.Parse(q["filter"].Where(s => s is not null)!);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            await StartStream(ctx);
            try
            {
                await foreach (EventMessage e in engine.Events.Subscribe(filter, since, until, cts.Token))
                    await WriteLine(ctx, e, ApiJson.Default.EventMessage);
            }
            catch (OperationCanceledException) { }
        });

        // Images. Names contain '/', so the name is a catch-all; "import-layout" is a literal and wins over it.
        app.MapGet("/v1/images", ctx => Write(ctx, 200, engine.Images.List().ToList(), ApiJson.Default.ListImageSummary));
        app.MapGet("/v1/images/{**name}", ctx =>
        {
            string name = Name(ctx);
            if (name.EndsWith("/history", StringComparison.Ordinal) && name.Length > 8)
                return Write(ctx, 200, engine.Transfer.History(name[..^8]), ApiJson.Default.ListHistoryItem);
            return Write(ctx, 200, engine.Images.Inspect(name), ApiJson.Default.ImageInspect);
        });
        app.MapGet("/v1/images/save", async ctx =>
        {
            IQueryCollection q = ctx.Request.Query;
            string format = ImageTransfer.SaveFormat(q["format"].FirstOrDefault());
            var names = q["names"].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList();
            IReadOnlyList<string> stored = engine.Transfer.SaveNames(names);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/x-tar";
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            // The archive writers are synchronous: they write through a stream adapter on a worker thread.
            await using Stream body = ctx.Response.BodyWriter.AsStream();
            await Task.Run(() =>
            {
                using var sync = new SyncWriteStream(body, ctx.RequestAborted);
                engine.Transfer.Save(sync, stored, format);
            }, ctx.RequestAborted);
        });
        app.MapPost("/v1/images/pull", async ctx =>
        {
            PullRequest req = await Read(ctx, ApiJson.Default.PullRequest);
            await Accepted(ctx, engine.Transfer.StartPull(engine.Operations, req.Name ?? "", req.Platform));
        });
        app.MapPost("/v1/images/push", async ctx =>
        {
            PushRequest req = await Read(ctx, ApiJson.Default.PushRequest);
            await Accepted(ctx, engine.Transfer.StartPush(engine.Operations, req.Name ?? ""));
        });
        app.MapPost("/v1/images/prune", ctx =>
            Write(ctx, 200, engine.Transfer.Prune(Bool(ctx.Request.Query["all"], "all")), ApiJson.Default.PruneResponse));
        app.MapPost("/v1/images/load", async ctx =>
        {
            Unlimited(ctx);
            LoadResult r = await engine.Transfer.LoadAsync(ctx.Request.Body, ctx.RequestAborted);
            await Write(ctx, 200, r, ApiJson.Default.LoadResult);
        });
        app.MapPost("/v1/images/import", async ctx =>
        {
            Unlimited(ctx);
            IQueryCollection q = ctx.Request.Query;
            LoadResult r = await engine.Transfer.ImportAsync(ctx.Request.Body, q["name"].FirstOrDefault(),
                q["changes"].Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList(), q["message"].FirstOrDefault(),
                q["platform"].FirstOrDefault(), ctx.RequestAborted);
            await Write(ctx, 200, r, ApiJson.Default.LoadResult);
        });

        // Registries and the system.
        app.MapPost("/v1/auth/login", async ctx =>
        {
            LoginRequest req = await Read(ctx, ApiJson.Default.LoginRequest);
            await Write(ctx, 200, await engine.Transfer.LoginAsync(req, ctx.RequestAborted), ApiJson.Default.LoginResponse);
        });
        app.MapDelete("/v1/auth/{**registry}", ctx =>
            Write(ctx, 200, engine.Transfer.Logout(Uri.UnescapeDataString(ctx.Request.RouteValues["registry"] as string ?? "")), ApiJson.Default.LogoutResponse));
        app.MapGet("/v1/system/df", ctx => Write(ctx, 200, engine.Transfer.DiskUsage(), ApiJson.Default.DiskUsageResponse));
        app.MapPost("/v1/system/prune", ctx =>
            Write(ctx, 200, engine.Transfer.Prune(Bool(ctx.Request.Query["all"], "all"), "system"), ApiJson.Default.PruneResponse));
        app.MapPost("/v1/images/{**name}", async ctx =>
        {
            string name = Name(ctx);
            if (!name.EndsWith("/tag", StringComparison.Ordinal) || name.Length <= 4)
                throw EngineException.NotFound($"no such endpoint: POST {ctx.Request.Path}");
            TagRequest req = await Read(ctx, ApiJson.Default.TagRequest);
            if (string.IsNullOrEmpty(req.Target)) throw EngineException.Invalid("target is required");
            engine.Images.Tag(name[..^4], req.Target);
            ctx.Response.StatusCode = 204;
        });
        app.MapDelete("/v1/images/{**name}", ctx =>
            Write(ctx, 200, engine.Transfer.Remove(Name(ctx), Bool(ctx.Request.Query["force"], "force")), ApiJson.Default.ImageDeleteResponse));
        app.MapPost("/v1/images/import-layout", async ctx =>
        {
            ImportLayoutRequest req = await Read(ctx, ApiJson.Default.ImportLayoutRequest);
            Operation op = engine.Images.StartImportLayout(engine.Operations, req.Path, string.IsNullOrEmpty(req.Name) ? null : req.Name);
            await Accepted(ctx, op);
        });

        // Operations.
        app.MapGet("/v1/operations", ctx => Write(ctx, 200, engine.Operations.List().ToList(), ApiJson.Default.ListOperationInfo));
        app.MapGet("/v1/operations/{id}", ctx => Write(ctx, 200, engine.Operations.Get(Id(ctx)).Info(), ApiJson.Default.OperationInfo));
        app.MapGet("/v1/operations/{id}/wait", async ctx =>
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            OperationInfo info = await engine.Operations.WaitAsync(Id(ctx), cts.Token);
            await Write(ctx, 200, info, ApiJson.Default.OperationInfo);
        });
        app.MapGet("/v1/operations/{id}/progress", async ctx =>
        {
            Operation op = engine.Operations.Get(Id(ctx));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            await StartStream(ctx);
            try
            {
                await foreach (ProgressEvent e in op.Progress(cts.Token))
                    await WriteLine(ctx, e, ApiJson.Default.ProgressEvent);
                await WriteLine(ctx, op.Info(), ApiJson.Default.OperationInfo);
            }
            catch (OperationCanceledException) { }
        });
        app.MapDelete("/v1/operations/{id}", async ctx =>
        {
            OperationInfo info = await engine.Operations.CancelAsync(Id(ctx), TimeSpan.FromSeconds(30), ctx.RequestAborted);
            await Write(ctx, 200, info, ApiJson.Default.OperationInfo);
        });
    }

    private static string Name(HttpContext ctx) =>
        Uri.UnescapeDataString(ctx.Request.RouteValues["name"] as string ?? throw EngineException.Invalid("image name is missing"));

    /// <summary>Archives and rootfs tarballs are as large as they are (Kestrel's default limit is 30 MB).</summary>
    private static void Unlimited(HttpContext ctx)
    {
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f) f.MaxRequestBodySize = null;
    }

    private static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

    private static async Task Accepted(HttpContext ctx, Operation op)
    {
        ctx.Response.Headers.Location = $"/v1/operations/{op.Id}";
        await Write(ctx, 202, op.Info(), ApiJson.Default.OperationInfo);
    }

    public static Task Write<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(ctx.Response.Body, value, type, ctx.RequestAborted);
    }

    private static async Task<T> Read<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        if (ctx.Request.ContentLength is > 1024 * 1024) throw EngineException.Invalid("request body is larger than 1 MiB");
        try
        {
            return await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted)
                ?? throw EngineException.Invalid("request body is empty (expected a JSON object)");
        }
        catch (JsonException e)
        {
            throw EngineException.Invalid($"request body is not valid JSON for this endpoint: {e.Message}");
        }
    }

    private static async Task StartStream(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = ApiInfo.NdjsonContentType;
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    private static async Task WriteLine<T>(HttpContext ctx, T value, JsonTypeInfo<T> type)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, type);
        await ctx.Response.Body.WriteAsync(json, ctx.RequestAborted);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>Unix seconds, fractions allowed ("1700000000.5").</summary>
    private static long? UnixNanos(Microsoft.Extensions.Primitives.StringValues v, string what)
    {
        if (v.Count == 0 || string.IsNullOrEmpty(v[0])) return null;
        if (!decimal.TryParse(v[0], System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out decimal s) || s < 0 || s > 9_000_000_000m)
            throw EngineException.Invalid($"{what}={v[0]}: expected unix seconds");
        return (long)(s * 1_000_000_000m);
    }

    private static bool Bool(Microsoft.Extensions.Primitives.StringValues v, string what)
    {
        if (v.Count == 0 || string.IsNullOrEmpty(v[0])) return false;
        return v[0] switch
        {
            "1" or "true" or "True" => true,
            "0" or "false" or "False" => false,
            _ => throw EngineException.Invalid($"{what}={v[0]}: expected true or false"),
        };
    }
}

/// <summary>Every failure becomes one JSON <see cref="ErrorResponse"/> with the matching status; a 4xx/5xx
/// that the framework produced with no body (no route: 404, wrong method: 405) gets one too.</summary>
internal sealed class ErrorMiddleware(RequestDelegate next, ILogger<ErrorMiddleware> log, bool debug)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await next(ctx);
            if (!ctx.Response.HasStarted && ctx.Response.StatusCode >= 400)
            {
                (string code, string msg) = ctx.Response.StatusCode switch
                {
                    404 => (ErrorCodes.NotFound, $"no such endpoint: {ctx.Request.Method} {ctx.Request.Path}"),
                    405 => (ErrorCodes.MethodNotAllowed, $"method {ctx.Request.Method} is not allowed on {ctx.Request.Path}"),
                    >= 500 => (ErrorCodes.Internal, "internal error"),
                    _ => (ErrorCodes.Invalid, "bad request"),
                };
                await Fail(ctx, ctx.Response.StatusCode, new ErrorResponse(msg, code));
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (Exception e)
        {
            (int status, ErrorResponse err) = e switch
            {
                EngineException ee => (StatusOf(ee.Code), new ErrorResponse(ee.Message, ee.Code)),
                BadHttpRequestException b => (b.StatusCode, new ErrorResponse(b.Message, ErrorCodes.Invalid)),
                _ => (500, new ErrorResponse(OneLine(e), ErrorCodes.Internal)),
            };
            if (status >= 500) log.LogError("{Method} {Path}: {Message}", ctx.Request.Method, ctx.Request.Path, OneLine(e));
            if (!ctx.Response.HasStarted) await Fail(ctx, status, err);
            else ctx.Abort();
        }
        finally
        {
            if (debug)
                log.LogDebug("{Method} {Path}{Query} {Status} {Ms:0.0}ms", ctx.Request.Method, ctx.Request.Path, ctx.Request.QueryString,
                    ctx.Response.StatusCode, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }

    public static int StatusOf(string code) => code switch
    {
        ErrorCodes.NotFound => 404,
        ErrorCodes.Conflict or ErrorCodes.Cancelled => 409,
        ErrorCodes.Invalid => 400,
        ErrorCodes.Unauthorized => 401,
        ErrorCodes.RateLimited => 429,
        ErrorCodes.Unavailable => 502,
        ErrorCodes.MethodNotAllowed => 405,
        _ => 500,
    };

    private static Task Fail(HttpContext ctx, int status, ErrorResponse err)
    {
        ctx.Response.Clear();
        return ApiRoutes.Write(ctx, status, err, ApiJson.Default.ErrorResponse);
    }

    private static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ").Trim() is { Length: > 0 } m ? m : e.GetType().Name;
}
