using System.Runtime.InteropServices;

namespace Vessel.Cli;

/// <summary>What a client attached to a container does with the signals it receives. docker's --sig-proxy (the default
/// without a terminal): they go to the container's process, so ctrl-c or a kill of the client reaches the program the
/// user thinks they are talking to. With a terminal (its keys already reach the container through the pty) or
/// --sig-proxy=false, the signals that end a program end the stream instead, and the container goes on.</summary>
internal sealed class SignalForwarding : IDisposable
{
    // docker forwards every signal but SIGCHLD, SIGPIPE, SIGURG and SIGWINCH; these are the ones a terminal or a
    // supervisor sends in practice. Raw numbers: PosixSignal names only some of them.
    private static readonly int[] Forwarded = [1, 2, 3, 10, 12, 14, 15];   // HUP INT QUIT USR1 USR2 ALRM TERM
    private static readonly int[] Ending = [1, 2, 3, 15];

    private readonly List<PosixSignalRegistration> _registrations = [];

    private SignalForwarding() { }

    public static SignalForwarding Start(Client client, string containerId, bool proxy, CancellationTokenSource stream)
    {
        var f = new SignalForwarding();
        foreach (int signal in proxy ? Forwarded : Ending)
            f._registrations.Add(PosixSignalRegistration.Create((PosixSignal)signal, context =>
            {
                context.Cancel = true;
                if (proxy)
                    _ = client.SendNoContent(HttpMethod.Post, $"v1/containers/{Uri.EscapeDataString(containerId)}/kill?signal={signal}", null, CancellationToken.None)
                        .ContinueWith(_ => { }, TaskScheduler.Default);   // a container that just ended is no error here
                else
                    stream.Cancel();
            }));
        return f;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
