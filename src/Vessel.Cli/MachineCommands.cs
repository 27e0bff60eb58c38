using System.CommandLine;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Linux;

namespace Vessel.Cli;

/// <summary>`vessel vm …`: virtual machines on QEMU (docs/machines.md).</summary>
internal sealed partial class Commands
{
    private Command VmGroup()
    {
        var vm = new Command("vm", "Manage virtual machines");
        vm.Subcommands.Add(VmCreate());
        vm.Subcommands.Add(VmStart());
        foreach (var (verb, what) in new[] { ("kill", "Kill one or more running VMs (QEMU gets SIGKILL)"),
                     ("pause", "Pause one or more VMs (QMP stop)"), ("resume", "Resume one or more paused VMs (QMP cont)") })
            vm.Subcommands.Add(VmVerb(verb, what, null));
        vm.Subcommands.Add(VmVerb("stop", "Stop one or more VMs: ACPI power-down, then after --time QEMU quits", "t"));
        vm.Subcommands.Add(VmVerb("restart", "Stop, then start one or more VMs", "t"));
        vm.Subcommands.Add(VmRm());
        vm.Subcommands.Add(VmLs());
        vm.Subcommands.Add(VmInspect());
        vm.Subcommands.Add(VmLogs());
        vm.Subcommands.Add(VmConsole());
        AddMachineStorageCommands(vm);
        return vm;
    }

    private Command VmCreate()
    {
        var name = new Argument<string>("NAME");
        var image = new Argument<string?>("IMAGE") { Arity = ArgumentArity.ZeroOrOne, Description = "Disk image on the daemon's host (qcow2, raw; vmdk, vdi, vhd, vhdx are converted)" };
        var kernel = new Option<string?>("--kernel") { Description = "Boot this kernel directly (a path on the daemon's host)" };
        var initrd = new Option<string?>("--initrd") { Description = "Initrd for --kernel" };
        var initramfs = new Option<bool>("--initramfs") { Description = "Generate a busybox initramfs with the kernel's virtio modules (for --kernel)" };
        var append = new Option<string?>("--append") { Description = "Kernel command line (console=ttyS0 is added unless given)" };
        var cpus = new Option<int?>("--cpus") { Description = "Virtual CPUs (default 1)" };
        var memory = new Option<string?>("--memory", "-m") { Description = "Memory (default 512m)" };
        var disk = new Option<string?>("--disk") { Description = "Disk size: a blank disk, or the image's disk grown to it (e.g. 10g)" };
        var network = new Option<string[]>("--network") { Description = "Join a bridge network (repeatable; a NIC per network, address by DHCP; default: no NIC)", Arity = ArgumentArity.ZeroOrMore };
        var cache = new Option<string?>("--cache") { Description = "Disk cache mode: writeback (default), none, writethrough, directsync, unsafe" };
        var accel = new Option<string?>("--accel") { Description = "Accelerator: auto (default: probed), kvm or tcg" };
        var userData = new Option<string?>("--user-data") { Description = "cloud-init user-data file (NoCloud seed)" };
        var sshKey = new Option<string[]>("--ssh-key") { Description = "SSH public key file for cloud-init", Arity = ArgumentArity.ZeroOrMore };
        var start = new Option<bool>("--start") { Description = "Start the VM once created" };
        var cmd = new Command("create", "Create a virtual machine") { name, image, kernel, initrd, initramfs, append, cpus, memory, disk, network, cache, accel, userData, sshKey, start };
        cmd.SetAction(async (pr, ct) =>
        {
            static string Abs(string p) => Path.GetFullPath(p);
            string? ud = pr.GetValue(userData) is { } u ? ReadFile(u, "--user-data") : null;
            var keys = (pr.GetValue(sshKey) ?? []).Select(k => ReadFile(k, "--ssh-key")).ToList();
            var req = new MachineCreateRequest
            {
                Name = pr.GetValue(name)!, Image = pr.GetValue(image) is { } img ? Abs(img) : null,
                Kernel = pr.GetValue(kernel) is { } k ? Abs(k) : null, Initrd = pr.GetValue(initrd) is { } i ? Abs(i) : null,
                Initramfs = pr.GetValue(initramfs), Append = pr.GetValue(append), Cpus = pr.GetValue(cpus),
                Memory = pr.GetValue(memory) is { } m ? ParseBytes(m) : null, DiskSize = pr.GetValue(disk) is { } d ? ParseBytes(d) : null,
                Networks = pr.GetValue(network) is { Length: > 0 } n ? [.. n] : null, Cache = pr.GetValue(cache), Accel = pr.GetValue(accel),
                UserData = ud, SshKeys = keys.Count > 0 ? keys : null,
            };
            using Client c = Connect(pr);
            MachineCreateResponse r = await c.Send(HttpMethod.Post, "v1/vms", Client.Json(req, MachineJson.Default.MachineCreateRequest),
                MachineJson.Default.MachineCreateResponse, ct);
            foreach (string w in r.Warnings) Console.Error.WriteLine($"WARNING: {w}");
            if (pr.GetValue(start)) await c.SendNoContent(HttpMethod.Post, $"v1/vms/{Uri.EscapeDataString(r.Id)}/start", null, ct);
            Console.Out.WriteLine(r.Id);
            return 0;
        });
        return cmd;
    }

    private static string ReadFile(string path, string flag)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"{flag} {path}: {e.Message}"); }
    }

    private Command VmVerb(string verb, string description, string? timeFlag)
    {
        var names = new Argument<string[]>("VM") { Arity = ArgumentArity.OneOrMore };
        var time = new Option<int?>("--time", "-t") { Description = "Seconds to wait for the guest to power off before QEMU is told to quit (default 30)" };
        var cmd = new Command(verb, description) { names };
        if (timeFlag is not null) cmd.Options.Add(time);
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            string q = timeFlag is not null && pr.GetValue(time) is int t ? $"?t={t}" : "";
            CliException? failure = null;
            foreach (string n in pr.GetValue(names)!)
            {
                try
                {
                    await c.SendNoContent(HttpMethod.Post, $"v1/vms/{Uri.EscapeDataString(n)}/{verb}{q}", null, ct);
                    Console.Out.WriteLine(n);
                }
                catch (CliException e)
                {
                    Console.Error.WriteLine($"vessel: {e.Message}");
                    failure = new CliException($"{verb} failed for some VMs");
                }
            }
            if (failure is not null) return CliException.Failure;
            return 0;
        });
        return cmd;
    }

    private Command VmRm()
    {
        var names = new Argument<string[]>("VM") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "Kill a running VM first" };
        var cmd = new Command("rm", "Remove one or more VMs and their disks") { names, force };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            int rc = 0;
            foreach (string n in pr.GetValue(names)!)
            {
                try
                {
                    await c.SendNoContent(HttpMethod.Delete, $"v1/vms/{Uri.EscapeDataString(n)}{(pr.GetValue(force) ? "?force=true" : "")}", null, ct);
                    Console.Out.WriteLine(n);
                }
                catch (CliException e) { Console.Error.WriteLine($"vessel: {e.Message}"); rc = CliException.Failure; }
            }
            return rc;
        });
        return cmd;
    }

    private Command VmLs()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Show all VMs (default shows just running)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only display VM IDs" };
        var format = TemplateFormatOption();
        var cmd = new Command("ls", "List VMs") { all, quiet, format };
        cmd.Aliases.Add("ps");
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true);
            using Client c = Connect(pr);
            List<MachineSummary> list = await c.Get($"v1/vms?all={(pr.GetValue(all) ? "true" : "false")}", MachineJson.Default.ListMachineSummary, ct);
            if (json) { foreach (MachineSummary s in list) JsonLine(s, MachineJson.Default.MachineSummary); return 0; }
            if (pr.GetValue(quiet)) { foreach (MachineSummary s in list) Console.Out.WriteLine(s.Id[..12]); return 0; }
            DateTimeOffset now = DateTimeOffset.UtcNow;
            if (Templated(pr, format, list, s => VmRow(s, now))) return 0;
            var t = new Table("VM ID", "NAME", "CPUS", "MEMORY", "CREATED", "STATUS", "SOURCE");
            foreach (MachineSummary s in list)
                t.Add(s.Id[..12], s.Name, s.Cpus.ToString(), $"{s.Memory / (1024 * 1024)}MiB", Human.Ago(s.Created, now), VmStatus(s.State, now), s.Source ?? "");
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    private static string VmStatus(MachineStateInfo s, DateTimeOffset now) => s.Status switch
    {
        MachineStatus.Running => $"Up {Human.Duration(now - (s.StartedAt ?? now))} ({s.Accel})",
        MachineStatus.Paused => $"Up {Human.Duration(now - (s.StartedAt ?? now))} (paused)",
        MachineStatus.Stopped => $"Stopped ({s.ExitReason ?? "?"}) {Human.Ago(s.FinishedAt, now)}",
        _ => "Created",
    };

    private Command VmInspect()
    {
        var names = new Argument<string[]>("VM") { Arity = ArgumentArity.OneOrMore };
        var format = FormatOption();
        var cmd = new Command("inspect", "Display detailed information on one or more VMs") { names, format };
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format);
            using Client c = Connect(pr);
            var docs = new List<MachineInspect>();
            foreach (string n in pr.GetValue(names)!)
                docs.Add(await c.Get($"v1/vms/{Uri.EscapeDataString(n)}", MachineJson.Default.MachineInspect, ct));
            if (json) { foreach (MachineInspect d in docs) JsonLine(d, MachineJson.Default.MachineInspect); return 0; }
            var indented = new MachineJson(new JsonSerializerOptions
            {
                PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true,
                DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
            });
            Console.Out.WriteLine("[");
            for (int i = 0; i < docs.Count; i++)
                Console.Out.WriteLine(JsonSerializer.Serialize(docs[i], indented.MachineInspect) + (i < docs.Count - 1 ? "," : ""));
            Console.Out.WriteLine("]");
            return 0;
        });
        return cmd;
    }

    private Command VmLogs()
    {
        var name = new Argument<string>("VM");
        var follow = new Option<bool>("--follow", "-f") { Description = "Follow the console output until the VM stops" };
        var cmd = new Command("logs", "Show a VM's serial console output since it was created") { name, follow };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            using HttpResponseMessage resp = await c.Stream(HttpMethod.Get, $"v1/vms/{Uri.EscapeDataString(pr.GetValue(name)!)}/logs?follow={(pr.GetValue(follow) ? "true" : "false")}", null, ct);
            await using Stream body = await resp.Content.ReadAsStreamAsync(ct);
            await using Stream stdout = Console.OpenStandardOutput();
            try
            {
                var buf = new byte[64 * 1024];
                int n;
                while ((n = await body.ReadAsync(buf, ct)) > 0) { await stdout.WriteAsync(buf.AsMemory(0, n), ct); await stdout.FlushAsync(ct); }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            return 0;
        });
        return cmd;
    }

    private const byte DetachKey = 0x1d; // Ctrl-]

    private Command VmConsole()
    {
        var name = new Argument<string>("VM");
        var cmd = new Command("console", "Attach to a VM's serial console (detach with Ctrl-])") { name };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            string vm = pr.GetValue(name)!;
            using Socket s = await OpenConsole(c.Socket, vm, ct);
            bool tty = Terminal.IsTerminal(0);
            if (tty) Console.Error.Write($"Connected to the console of {vm}; detach with Ctrl-]\r\n");
            byte[]? saved = tty ? Terminal.MakeRaw(0) : null;
            try
            {
                await using var net = new NetworkStream(s, ownsSocket: false);
                await using Stream stdin = Console.OpenStandardInput(), stdout = Console.OpenStandardOutput();
                using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
                Task output = Task.Run(async () =>
                {
                    var buf = new byte[16 * 1024];
                    try
                    {
                        int n;
                        while ((n = await net.ReadAsync(buf, done.Token)) > 0) { await stdout.WriteAsync(buf.AsMemory(0, n), done.Token); await stdout.FlushAsync(done.Token); }
                    }
                    catch (Exception e) when (e is OperationCanceledException or IOException) { }
                });
                Task input = Task.Run(async () =>
                {
                    var buf = new byte[4096];
                    try
                    {
                        int n;
                        while ((n = await stdin.ReadAsync(buf, done.Token)) > 0)
                        {
                            int detach = Array.IndexOf(buf, DetachKey, 0, n);
                            await net.WriteAsync(buf.AsMemory(0, detach < 0 ? n : detach), done.Token);
                            if (detach >= 0) return;
                        }
                        await Task.Delay(TimeSpan.FromSeconds(1), done.Token); // stdin ended (a pipe): let the answer come
                    }
                    catch (Exception e) when (e is OperationCanceledException or IOException) { }
                });
                await Task.WhenAny(output, input);
                await done.CancelAsync();
            }
            finally
            {
                if (saved is not null) Terminal.Restore(0, saved);
            }
            if (tty) Console.Error.WriteLine();
            return 0;
        });
        return cmd;
    }

    /// <summary>POST /v1/vms/NAME/console with an HTTP upgrade, by hand (HttpClient does not hand out upgraded
    /// HTTP/1.1 connections): after the 101 the socket carries the console's bytes.</summary>
    private static async Task<Socket> OpenConsole(string socketPath, string vm, CancellationToken ct)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try { await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct); }
            catch (SocketException e) { throw new CliException($"cannot connect to the Vessel daemon at unix://{socketPath}: {e.Message}"); }
            string req = $"POST /v1/vms/{Uri.EscapeDataString(vm)}/console HTTP/1.1\r\nHost: vessel\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
            await s.SendAsync(Encoding.ASCII.GetBytes(req), ct);
            var head = new List<byte>();
            var one = new byte[1];
            while (head.Count < 65536)
            {
                if (await s.ReceiveAsync(one, ct) == 0) throw new CliException("the daemon closed the console connection");
                head.Add(one[0]);
                if (head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r') break;
            }
            string text = Encoding.ASCII.GetString(head.ToArray());
            string status = text.Split("\r\n")[0];
            if (status.Split(' ') is [_, "101", ..]) return s;
            int length = 0;
            foreach (string line in text.Split("\r\n"))
                if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) int.TryParse(line[15..].Trim(), out length);
            var body = new byte[Math.Min(length, 65536)];
            int got = 0;
            while (got < body.Length) { int n = await s.ReceiveAsync(body.AsMemory(got), ct); if (n == 0) break; got += n; }
            ErrorResponse? err = null;
            try { err = JsonSerializer.Deserialize(Encoding.UTF8.GetString(body, 0, got), ApiJson.Default.ErrorResponse); } catch (JsonException) { }
            throw new CliException(err?.Message ?? $"console: {status}");
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }
}
