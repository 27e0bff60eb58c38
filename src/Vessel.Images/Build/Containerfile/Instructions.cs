namespace Vessel.Images.Build.Containerfile;

/// <summary>Where an instruction starts: file, 1-based line and column.</summary>
public readonly record struct SourcePos(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>A Containerfile that cannot be parsed, or an instruction that cannot be carried out: the message
/// names the file, the line and the column (<c>Containerfile:3:1: unknown instruction: FOO</c>).</summary>
public sealed class ContainerfileException(SourcePos pos, string message) : Exception($"{pos}: {message}")
{
    public SourcePos Position { get; } = pos;
    public string Reason { get; } = message;
}

/// <summary>A command in exec form (a JSON array) or shell form (one string for the SHELL).</summary>
public sealed record CommandForm(IReadOnlyList<string>? Exec, string? Shell)
{
    public bool IsExec => Exec is not null;

    /// <summary>argv: the exec form as it is, the shell form appended to <paramref name="shell"/>.</summary>
    public IReadOnlyList<string> Argv(IReadOnlyList<string> shell) => Exec ?? [.. shell, Shell!];

    public override string ToString() => Exec is not null ? "[" + string.Join(", ", Exec.Select(a => "\"" + a + "\"")) + "]" : Shell!;
}

/// <summary>A here-document (<c>&lt;&lt;EOF</c> … <c>EOF</c>): its name, body, whether variables in it expand
/// (unquoted name) and whether leading tabs are stripped (<c>&lt;&lt;-</c>).</summary>
public sealed record Heredoc(string Name, string Content, bool Expand, bool StripTabs);

/// <summary>One instruction, unexpanded: variables are expanded when the build reaches it (ARG and ENV values
/// depend on what came before). <see cref="Text"/> is the instruction as written, continuations joined.</summary>
public abstract record Instruction
{
    public required SourcePos Pos { get; init; }
    public required string Keyword { get; init; }
    public required string Text { get; init; }
    public IReadOnlyList<Heredoc> Heredocs { get; init; } = [];
}

public sealed record FromInstruction : Instruction
{
    public required string Image { get; init; }
    public string? Alias { get; init; }
    public string? Platform { get; init; }
}

public sealed record RunInstruction : Instruction
{
    public required CommandForm Command { get; init; }
    /// <summary>--network=default|none|host.</summary>
    public string? Network { get; init; }
}

public sealed record CopyInstruction : Instruction
{
    public required bool IsAdd { get; init; }
    public required IReadOnlyList<string> Sources { get; init; }
    public required string Dest { get; init; }
    public string? From { get; init; }
    public string? Chown { get; init; }
    public string? Chmod { get; init; }
    public string? Checksum { get; init; }
    public bool Link { get; init; }
}

/// <summary>ENV and LABEL: name/value pairs; values are raw words (quotes kept until expansion).</summary>
public sealed record KeyValueInstruction : Instruction
{
    public required IReadOnlyList<KeyValuePair<string, string>> Pairs { get; init; }
}

public sealed record ArgInstruction : Instruction
{
    /// <summary>Name and raw default (null: no default).</summary>
    public required IReadOnlyList<KeyValuePair<string, string?>> Args { get; init; }
}

/// <summary>CMD and ENTRYPOINT.</summary>
public sealed record CommandInstruction : Instruction
{
    public required CommandForm Command { get; init; }
}

/// <summary>WORKDIR, USER, STOPSIGNAL, MAINTAINER: one raw value.</summary>
public sealed record ValueInstruction : Instruction
{
    public required string Value { get; init; }
}

/// <summary>EXPOSE and VOLUME: raw words (VOLUME's JSON form is already literal).</summary>
public sealed record ListInstruction : Instruction
{
    public required IReadOnlyList<string> Items { get; init; }
    public bool Literal { get; init; }
}

public sealed record ShellInstruction : Instruction
{
    public required IReadOnlyList<string> Shell { get; init; }
}

public sealed record HealthcheckInstruction : Instruction
{
    /// <summary>["NONE"], ["CMD", args…] or ["CMD-SHELL", command].</summary>
    public required IReadOnlyList<string> Test { get; init; }
    public TimeSpan? Interval { get; init; }
    public TimeSpan? Timeout { get; init; }
    public TimeSpan? StartPeriod { get; init; }
    public TimeSpan? StartInterval { get; init; }
    public int? Retries { get; init; }
}

public sealed record OnbuildInstruction : Instruction
{
    /// <summary>The trigger as written (what the image config stores).</summary>
    public required string Trigger { get; init; }
    public required Instruction Parsed { get; init; }
}

/// <summary>One FROM and what follows it up to the next FROM.</summary>
public sealed record Stage(int Index, FromInstruction From, IReadOnlyList<Instruction> Instructions)
{
    public string? Name => From.Alias;
}

/// <summary>A parsed Containerfile: its parser directives, the ARGs before the first FROM, the stages.</summary>
public sealed record ParsedContainerfile(
    string File, char Escape, string? Syntax, IReadOnlyList<ArgInstruction> MetaArgs, IReadOnlyList<Stage> Stages, IReadOnlyList<string> Warnings)
{
    /// <summary>The stage <paramref name="nameOrIndex"/> names (alias, case-insensitive, or index), or null.</summary>
    public Stage? FindStage(string nameOrIndex)
    {
        Stage? s = Stages.FirstOrDefault(x => string.Equals(x.Name, nameOrIndex, StringComparison.OrdinalIgnoreCase));
        if (s is not null) return s;
        return int.TryParse(nameOrIndex, out int i) && i >= 0 && i < Stages.Count ? Stages[i] : null;
    }
}
