using Vessel.Images.Content;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.Daemon;

/// <summary>/v1/containers/{id}/… (docs/api.md): pause, unpause, rename, update, top, stats, changes, commit and the
/// archive (cp) endpoints.</summary>
internal static class ContainerVerbRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;
        var containers = engine.Containers;

        app.MapPost("/v1/containers/{id}/pause", ctx =>
        {
            containers.Pause(Id(ctx));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/v1/containers/{id}/unpause", ctx =>
        {
            containers.Unpause(Id(ctx));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/v1/containers/{id}/rename", ctx =>
        {
            containers.Rename(Id(ctx), ctx.Request.Query["name"].FirstOrDefault() ?? "");
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/v1/containers/{id}/update", async ctx =>
        {
            ContainerUpdateRequest req = await Read(ctx, ContainerVerbsJson.Default.ContainerUpdateRequest);
            await ApiRoutes.Write(ctx, 200, containers.Update(Id(ctx), req), ContainerVerbsJson.Default.ContainerUpdateResponse);
        });
        app.MapGet("/v1/containers/{id}/top", async ctx =>
        {
            ContainerTopResponse r = await containers.TopAsync(Id(ctx), ctx.Request.Query["ps_args"].FirstOrDefault(), ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 200, r, ContainerVerbsJson.Default.ContainerTopResponse);
        });
        app.MapGet("/v1/containers/{id}/changes", ctx =>
            ApiRoutes.Write(ctx, 200, containers.Changes(Id(ctx)), ContainerVerbsJson.Default.ListContainerChange));
        app.MapPost("/v1/containers/{id}/commit", async ctx =>
        {
            ContainerCommitRequest req = await Read(ctx, ContainerVerbsJson.Default.ContainerCommitRequest);
            ContainerCommitResponse r = await Task.Run(() => containers.Commit(Id(ctx), req), ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, ContainerVerbsJson.Default.ContainerCommitResponse);
        });
        app.MapGet("/v1/containers/{id}/stats", async ctx =>
        {
            string id = Id(ctx);
            containers.Get(id); // 404 before the stream starts
            bool stream = ctx.Request.Query["stream"].FirstOrDefault() is not ("0" or "false" or "False");
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = ApiInfo.NdjsonContentType;
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            try
            {
                await foreach (ContainerStats s in containers.Stats(id, stream, cts.Token))
                {
                    await ctx.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(s, ContainerVerbsJson.Default.ContainerStats), cts.Token);
                    await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), cts.Token);
                    await ctx.Response.Body.FlushAsync(cts.Token);
                }
            }
            catch (OperationCanceledException) { }
        });

        // cp: docker's archive endpoints. The stat of the path travels base64-encoded in a header.
        app.MapMethods("/v1/containers/{id}/archive", ["HEAD"], ctx =>
        {
            ContainerPathStat stat = containers.StatPath(Id(ctx), Path(ctx));
            ctx.Response.Headers[ContainerVerbsJson.PathStatHeader] = StatHeader(stat);
            ctx.Response.StatusCode = 200;
            return Task.CompletedTask;
        });
        app.MapGet("/v1/containers/{id}/archive", async ctx =>
        {
            var (stat, write) = containers.ArchivePath(Id(ctx), Path(ctx));
            ctx.Response.Headers[ContainerVerbsJson.PathStatHeader] = StatHeader(stat);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/x-tar";
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await using Stream body = ctx.Response.BodyWriter.AsStream();
            await Task.Run(() =>
            {
                using var sync = new SyncWriteStream(body, ctx.RequestAborted);
                write(sync);
            }, ctx.RequestAborted);
        });
        app.MapPut("/v1/containers/{id}/archive", async ctx =>
        {
            if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f) f.MaxRequestBodySize = null;
            string id = Id(ctx), path = Path(ctx);
            Stream body = ctx.Request.Body;
            await Task.Run(() => containers.ExtractArchive(id, path, new SyncReadStream(body, ctx.RequestAborted)), ctx.RequestAborted);
            ctx.Response.StatusCode = 200;
        });
    }

    private static string StatHeader(ContainerPathStat stat) =>
        Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(stat, ContainerVerbsJson.Default.ContainerPathStat));

    private static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

    private static string Path(HttpContext ctx) =>
        ctx.Request.Query["path"].FirstOrDefault() is { Length: > 0 } p ? p : throw EngineException.Invalid("path is required");

    private static async Task<T> Read<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
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
}

/// <summary>Synchronous reads of an async request body, for the synchronous tar extractor on a worker thread.</summary>
internal sealed class SyncReadStream(Stream inner, CancellationToken cancel) : Stream
{
    public override int Read(byte[] buffer, int offset, int count) => inner.ReadAsync(buffer.AsMemory(offset, count), cancel).AsTask().GetAwaiter().GetResult();
    public override int Read(Span<byte> buffer)
    {
        byte[] tmp = new byte[buffer.Length];
        int n = Read(tmp, 0, tmp.Length);
        tmp.AsSpan(0, n).CopyTo(buffer);
        return n;
    }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
