using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Vessel.Api;
using Vessel.Machines;
using Vessel.Machines.Disks;
using Vessel.Machines.Qmp;

namespace Vessel.Engine.Machines;

/// <summary>Live migration between two Vessel daemons on one host (the base for host-to-host moves): the target
/// hard-links the VM's files into its own state root (shared storage: QEMU on the target opens the images inactive
/// until the migration completes, so the source keeps its locks until then), starts QEMU with -incoming on a Unix
/// socket and answers its URI; the source runs QMP migrate to it and follows query-migrate; once completed the
/// source QEMU quits and the source forgets the VM, whose files live on under the target's names.</summary>
public sealed partial class MachineService
{
    public Task<MachineIncomingResponse> IncomingAsync(MachineIncomingRequest req, CancellationToken cancel) => GuardAsync(async () =>
    {
        lock (_lock)
        {
            if (_all.ContainsKey(req.Id)) throw EngineException.Conflict($"a VM with id {req.Id[..12]} is already here");
            if (_all.Values.Any(m => m.Name == req.Name)) throw EngineException.Conflict($"the VM name \"{req.Name}\" is already in use here");
        }
        if (req.Id.Length != 64 || !req.Id.All(char.IsAsciiHexDigitLower)) throw EngineException.Invalid("bad VM id");
        MachineConfigRecord config = JsonSerializer.Deserialize(req.Config, MachineRecordJson.Default.MachineConfigRecord)
            ?? throw EngineException.Invalid("config is empty");
        string dir = DirOf(req.Id);
        Directory.CreateDirectory(dir, (UnixFileMode)0x1c0);
        try
        {
            foreach (string f in Directory.EnumerateFiles(req.SourceDir))
            {
                string name = Path.GetFileName(f);
                if (name is "console.log") File.Copy(f, Path.Combine(dir, name));
                else if (name is not ("qemu.log" or "qemu.cmdline")) NativeFiles.HardLink(f, Path.Combine(dir, name));
            }
            lock (_poolGate) foreach (MachineDiskRecord d in config.Disks) LinkBackingChain(FileOf(d.File), req.SourcePool);
            var rec = new MachineRecord(req.Id, req.Name, DateTimeOffset.UtcNow, config, new MachineStateRecord());
            _db.Write((c, tx) =>
            {
                using SqliteCommand cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO machines (id, name, created, config, state) VALUES ($id, $name, $created, $config, $state)";
                cmd.Parameters.AddWithValue("$id", rec.Id);
                cmd.Parameters.AddWithValue("$name", rec.Name);
                cmd.Parameters.AddWithValue("$created", rec.Created.ToUnixTimeMilliseconds() * 1_000_000);
                cmd.Parameters.AddWithValue("$config", JsonSerializer.Serialize(config, MachineRecordJson.Default.MachineConfigRecord));
                cmd.Parameters.AddWithValue("$state", JsonSerializer.Serialize(rec.State, MachineRecordJson.Default.MachineStateRecord));
                return cmd.ExecuteNonQuery();
            });
            lock (_lock) _all[rec.Id] = rec;
        }
        catch
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
            throw;
        }
        _events.Publish("vm", "create", req.Id, req.Name, new Dictionary<string, string> { ["incoming"] = "true" });
        string uri = "unix:" + Path.Combine(RunOf(req.Id), "migrate.sock");
        await using (await OpLock(req.Id, cancel))
            await StartCoreAsync(Get(req.Id), uri, cancel);
        Update(req.Id, s => s with { Status = MachineStatus.Paused });
        return new MachineIncomingResponse(req.Id, req.Name, uri);
    });

    /// <summary>Links the pool files a disk's backing chain names (relative ../pool/X) from the source pool.</summary>
    private void LinkBackingChain(string disk, string sourcePool)
    {
        for (int depth = 0; depth < 32; depth++)
        {
            string? backing = QemuImg.Info(disk).BackingFile;
            if (backing is null) return;
            string target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(disk)!, backing));
            if (!target.StartsWith(Pool + "/", StringComparison.Ordinal)) return; // an absolute backing outside the pool: shared as it is
            if (!File.Exists(target)) NativeFiles.HardLink(Path.Combine(sourcePool, Path.GetFileName(target)), target);
            disk = target;
        }
    }

    /// <summary>Moves a running VM to the Vessel daemon serving <paramref name="toSocket"/> on this host.</summary>
    public Task<JsonElement?> MigrateAsync(string idOrName, string toSocket, Action<string, long, long> progress, CancellationToken cancel) => GuardAsync<JsonElement?>(async () =>
    {
        MachineRecord m = Get(idOrName);
        await using var _ = await OpLock(m.Id, cancel);
        m = Get(m.Id);
        Live live = LiveOf(m.Id) ?? throw EngineException.Conflict($"VM {m.Name} is not running: there is nothing to migrate live (copy its disk instead)");
        QmpClient qmp = live.Qmp ?? throw EngineException.Conflict($"VM {m.Name} has no QMP connection");
        // Both QEMUs would need the tap at once (its name comes from the VM id): not supported yet.
        if (m.Config.Nics.Count > 0) throw EngineException.Conflict($"VM {m.Name} is on a network: migrating VMs with networks is not supported yet");
        if (toSocket.StartsWith("unix://", StringComparison.Ordinal)) toSocket = toSocket["unix://".Length..];
        using HttpClient target = UnixHttp(toSocket);
        var req = new MachineIncomingRequest
        {
            Id = m.Id, Name = m.Name, SourceDir = DirOf(m.Id), SourcePool = Pool,
            Config = JsonSerializer.Serialize(m.Config, MachineRecordJson.Default.MachineConfigRecord),
        };
        MachineIncomingResponse incoming;
        try
        {
            using HttpResponseMessage resp = await target.PostAsync("v1/vms/incoming", JsonContent.Create(req, MachineJson.Default.MachineIncomingRequest), cancel);
            if (!resp.IsSuccessStatusCode)
            {
                ErrorResponse? err = null;
                try { err = await resp.Content.ReadFromJsonAsync(ApiJson.Default.ErrorResponse, cancel); } catch (JsonException) { }
                throw new EngineException(ErrorCodes.Conflict, $"the target daemon refused the VM: {err?.Message ?? resp.StatusCode.ToString()}");
            }
            incoming = (await resp.Content.ReadFromJsonAsync(MachineJson.Default.MachineIncomingResponse, cancel))!;
        }
        catch (HttpRequestException e)
        {
            throw new EngineException(ErrorCodes.Unavailable, $"cannot reach the Vessel daemon at unix://{toSocket}: {e.Message}");
        }
        _events.Publish("vm", "migrate", m.Id, m.Name, new Dictionary<string, string> { ["to"] = toSocket, ["status"] = "started" });
        string status = "";
        try
        {
            await qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = incoming.Uri }, cancel);
            while (true)
            {
                JsonElement q = await qmp.ExecuteAsync("query-migrate", null, cancel);
                status = q.TryGetProperty("status", out JsonElement s) ? s.GetString() ?? "" : "";
                if (q.TryGetProperty("ram", out JsonElement ram))
                    progress(status, ram.TryGetProperty("transferred", out JsonElement t) ? t.GetInt64() : 0, ram.TryGetProperty("total", out JsonElement tot) ? tot.GetInt64() : 0);
                if (status is "completed" or "failed" or "cancelled") break;
                await Task.Delay(100, cancel);
            }
            if (status != "completed")
            {
                string why = "";
                try
                {
                    JsonElement q = await qmp.ExecuteAsync("query-migrate", null, CancellationToken.None);
                    if (q.TryGetProperty("error-desc", out JsonElement e)) why = ": " + e.GetString();
                }
                catch (MachineException) { }
                throw new EngineException(ErrorCodes.Internal, $"migration of VM {m.Name} {status}{why}");
            }
        }
        catch (Exception) when (status != "completed")
        {
            try { await qmp.ExecuteAsync("migrate_cancel", null, CancellationToken.None); } catch (MachineException) { }
            try { using var _d = await target.DeleteAsync($"v1/vms/{m.Id}?force=true", CancellationToken.None); } catch (HttpRequestException) { }
            if (Find(m.Id)?.State.Status == MachineStatus.Paused) try { await qmp.ExecuteAsync("cont", null, CancellationToken.None); } catch (MachineException) { }
            _events.Publish("vm", "migrate", m.Id, m.Name, new Dictionary<string, string> { ["to"] = toSocket, ["status"] = "failed" });
            throw;
        }
        // Completed: the guest runs on the target now. This QEMU quits; the VM leaves this daemon (its files stay
        // alive under the target's hard links).
        live.ShutdownReason = "migrated";
        try { await qmp.ExecuteAsync("quit", null, cancel); } catch (QmpDisconnectedException) { }
        await Wait(live, TimeSpan.FromSeconds(15), cancel);
        _events.Publish("vm", "migrate", m.Id, m.Name, new Dictionary<string, string> { ["to"] = toSocket, ["status"] = "completed" });
        await RemoveAsync(m.Id, force: true, cancel);
        return JsonSerializer.SerializeToElement(incoming, MachineJson.Default.MachineIncomingResponse);
    });

    private static HttpClient UnixHttp(string socket) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try { await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct); return new NetworkStream(s, ownsSocket: true); }
            catch { s.Dispose(); throw; }
        },
        UseProxy = false,
    }) { BaseAddress = new Uri("http://vessel/"), Timeout = TimeSpan.FromMinutes(2) };
}
