using System.CommandLine;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>`vessel vm clone|snapshot|resize-disk`.</summary>
internal sealed partial class Commands
{
    private void AddMachineStorageCommands(Command vm)
    {
        vm.Subcommands.Add(VmClone());
        vm.Subcommands.Add(VmSnapshot());
        vm.Subcommands.Add(VmResizeDisk());
        vm.Subcommands.Add(VmMigrate());
    }

    private Command VmMigrate()
    {
        var vm = new Argument<string>("VM");
        var to = new Option<string>("--to") { Description = "API socket of the target Vessel daemon on this host (unix:///path or /path)", Required = true };
        var cmd = new Command("migrate", "Move a running VM live to another Vessel daemon on this host") { vm, to };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            string target = pr.GetValue(to)!;
            if (!target.StartsWith("unix://", StringComparison.Ordinal)) target = "unix://" + Path.GetFullPath(target);
            OperationInfo op = await c.Send(HttpMethod.Post, VmPath(pr.GetValue(vm)!) + "/migrate",
                Client.Json(new MachineMigrateRequest(target), MachineJson.Default.MachineMigrateRequest), ApiJson.Default.OperationInfo, ct);
            OperationInfo done = await c.Get($"v1/operations/{op.Id}/wait", ApiJson.Default.OperationInfo, ct);
            if (done.Status != OperationStatus.Succeeded) throw new CliException(done.Error?.Message ?? $"migration {done.Status}");
            Console.Out.WriteLine(pr.GetValue(vm));
            return 0;
        });
        return cmd;
    }

    private static string VmPath(string name) => $"v1/vms/{Uri.EscapeDataString(name)}";

    private Command VmClone()
    {
        var source = new Argument<string>("VM");
        var name = new Argument<string>("NAME");
        var cmd = new Command("clone", "Make a linked clone of a stopped VM (its disk becomes a shared base; constant time)") { source, name };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            MachineCreateResponse r = await c.Send(HttpMethod.Post, VmPath(pr.GetValue(source)!) + "/clone",
                Client.Json(new MachineCloneRequest(pr.GetValue(name)!), MachineJson.Default.MachineCloneRequest), MachineJson.Default.MachineCreateResponse, ct);
            Console.Out.WriteLine(r.Id);
            return 0;
        });
        return cmd;
    }

    private Command VmSnapshot()
    {
        var group = new Command("snapshot", "Manage VM snapshots (running: memory + disk; stopped: disk)");
        {
            var vm = new Argument<string>("VM");
            var name = new Argument<string>("NAME");
            var create = new Command("create", "Take a snapshot") { vm, name };
            create.SetAction(async (pr, ct) =>
            {
                using Client c = Connect(pr);
                MachineSnapshotInfo s = await c.Send(HttpMethod.Post, VmPath(pr.GetValue(vm)!) + "/snapshots",
                    Client.Json(new MachineSnapshotRequest(pr.GetValue(name)!), MachineJson.Default.MachineSnapshotRequest), MachineJson.Default.MachineSnapshotInfo, ct);
                Console.Out.WriteLine(s.Name);
                return 0;
            });
            group.Subcommands.Add(create);
        }
        {
            var vm = new Argument<string>("VM");
            var format = FormatOption();
            var ls = new Command("ls", "List a VM's snapshots") { vm, format };
            ls.SetAction(async (pr, ct) =>
            {
                bool json = Json(pr, format);
                using Client c = Connect(pr);
                List<MachineSnapshotInfo> list = await c.Get(VmPath(pr.GetValue(vm)!) + "/snapshots", MachineJson.Default.ListMachineSnapshotInfo, ct);
                if (json) { foreach (MachineSnapshotInfo s in list) JsonLine(s, MachineJson.Default.MachineSnapshotInfo); return 0; }
                var t = new Table("NAME", "CREATED", "MEMORY", "STATE SIZE");
                DateTimeOffset now = DateTimeOffset.UtcNow;
                foreach (MachineSnapshotInfo s in list) t.Add(s.Name, Human.Ago(s.Created, now), s.Memory ? "yes" : "no", s.Memory ? Human.Size(s.VmStateSize) : "-");
                Console.Out.Write(t.ToString());
                return 0;
            });
            group.Subcommands.Add(ls);
        }
        foreach (var (verb, what) in new[] { ("restore", "Go back to a snapshot"), ("rm", "Delete a snapshot") })
        {
            var vm = new Argument<string>("VM");
            var name = new Argument<string>("NAME");
            var cmd = new Command(verb, what) { vm, name };
            cmd.SetAction(async (pr, ct) =>
            {
                using Client c = Connect(pr);
                string path = VmPath(pr.GetValue(vm)!) + "/snapshots/" + Uri.EscapeDataString(pr.GetValue(name)!);
                if (verb == "restore") await c.SendNoContent(HttpMethod.Post, path + "/restore", null, ct);
                else await c.SendNoContent(HttpMethod.Delete, path, null, ct);
                Console.Out.WriteLine(pr.GetValue(name));
                return 0;
            });
            group.Subcommands.Add(cmd);
        }
        return group;
    }

    private Command VmResizeDisk()
    {
        var vm = new Argument<string>("VM");
        var size = new Argument<string>("SIZE") { Description = "The new size (e.g. 20g); disks only grow" };
        var cmd = new Command("resize-disk", "Grow a VM's disk (running VMs see the new size at once)") { vm, size };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            await c.SendNoContent(HttpMethod.Post, VmPath(pr.GetValue(vm)!) + "/resize-disk",
                Client.Json(new MachineResizeRequest(ParseBytes(pr.GetValue(size)!)), MachineJson.Default.MachineResizeRequest), ct);
            return 0;
        });
        return cmd;
    }
}
