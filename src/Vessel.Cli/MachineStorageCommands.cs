using System.CommandLine;

namespace Vessel.Cli;

/// <summary>`vessel vm clone|snapshot|resize-disk|migrate`.</summary>
internal sealed partial class Commands
{
    private void AddMachineStorageCommands(Command vm)
    {
        _ = vm;
    }
}
