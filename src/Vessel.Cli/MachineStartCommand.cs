using System.CommandLine;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>`vessel vm start`: waits for each VM's QEMU to answer QMP (Ctrl-C cancels the start, which kills QEMU);
/// with -d the boots are daemon operations (vm.start) and their ids are printed for `operation wait|cancel`.</summary>
internal sealed partial class Commands
{
    private Command VmStart()
    {
        var names = new Argument<string[]>("VM") { Arity = ArgumentArity.OneOrMore };
        var detach = new Option<bool>("--detach", "-d") { Description = "Start in the background: print each start's operation id (vessel operation wait|cancel ID)" };
        var cmd = new Command("start", "Start one or more VMs") { detach, names };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            bool failed = false;
            foreach (string n in pr.GetValue(names)!)
            {
                try
                {
                    if (pr.GetValue(detach))
                    {
                        OperationInfo op = await c.Send(HttpMethod.Post, $"v1/vms/{Uri.EscapeDataString(n)}/start?async=true", null, ApiJson.Default.OperationInfo, ct);
                        Console.Out.WriteLine(op.Id);
                        continue;
                    }
                    await c.SendNoContent(HttpMethod.Post, $"v1/vms/{Uri.EscapeDataString(n)}/start", null, ct);
                    Console.Out.WriteLine(n);
                }
                catch (CliException e)
                {
                    Console.Error.WriteLine($"vessel: {e.Message}");
                    failed = true;
                }
            }
            return failed ? CliException.Failure : 0;
        });
        return cmd;
    }
}
