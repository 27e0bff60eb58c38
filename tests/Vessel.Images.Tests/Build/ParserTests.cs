using Vessel.Images.Build.Containerfile;

namespace Vessel.Images.Tests.Build;

public class ParserTests
{
    private static ParsedContainerfile P(string text) => Parser.Parse(text, "Containerfile");
    private static Instruction One(string body) => P("FROM scratch\n" + body).Stages[0].Instructions.Single();

    private static ContainerfileException Fails(string text)
    {
        var e = Assert.Throws<ContainerfileException>(() => P(text));
        Assert.StartsWith("Containerfile:", e.Message);
        return e;
    }

    [Fact]
    public void Minimal_from_scratch()
    {
        var f = P("FROM scratch");
        Assert.Single(f.Stages);
        Assert.Equal("scratch", f.Stages[0].From.Image);
        Assert.Null(f.Stages[0].Name);
        Assert.Empty(f.Stages[0].Instructions);
    }

    [Fact]
    public void Keywords_are_case_insensitive()
    {
        var f = P("from busybox\nrun echo hi\nCoPy a b\n");
        Assert.Equal(["RUN", "COPY"], f.Stages[0].Instructions.Select(i => i.Keyword));
    }

    [Fact]
    public void Multi_stage_with_names_and_positions()
    {
        var f = P("FROM debian AS build\nRUN make\n\nFROM scratch AS final\nCOPY --from=build /out /out\n");
        Assert.Equal(2, f.Stages.Count);
        Assert.Equal("build", f.Stages[0].Name);
        Assert.Equal("final", f.Stages[1].Name);
        Assert.Equal(4, f.Stages[1].From.Pos.Line);
        var copy = Assert.IsType<CopyInstruction>(f.Stages[1].Instructions[0]);
        Assert.Equal("build", copy.From);
        Assert.Equal(["/out"], copy.Sources);
        Assert.Equal("/out", copy.Dest);
        Assert.Same(f.Stages[0], f.FindStage("BUILD"));
        Assert.Same(f.Stages[1], f.FindStage("1"));
        Assert.Null(f.FindStage("nope"));
    }

    [Fact]
    public void Stage_names_are_lowercased_with_a_warning()
    {
        var f = P("FROM alpine AS Build\n");
        Assert.Equal("build", f.Stages[0].Name);
        Assert.Contains(f.Warnings, w => w.Contains("lowercase"));
    }

    [Fact]
    public void Duplicate_stage_names_are_an_error() =>
        Assert.Contains("duplicate stage name", Fails("FROM a AS x\nFROM b AS x\n").Message);

    [Fact]
    public void From_platform_is_noted_and_ignored()
    {
        var f = P("FROM --platform=linux/arm64 alpine\n");
        Assert.Equal("linux/arm64", f.Stages[0].From.Platform);
        Assert.Contains(f.Warnings, w => w.Contains("--platform") && w.Contains("ignored"));
    }

    [Fact]
    public void From_with_bad_arguments()
    {
        Assert.Contains("FROM takes an image", Fails("FROM a b\n").Message);
        Assert.Contains("invalid stage name", Fails("FROM a AS 1x\n").Message);
        Assert.Contains("FROM requires", Fails("FROM\n").Message);
    }

    [Fact]
    public void Args_before_from_are_meta_args()
    {
        var f = P("ARG BASE=alpine\nARG V\nFROM ${BASE}:${V}\nARG V\n");
        Assert.Equal(2, f.MetaArgs.Count);
        Assert.Equal("BASE", f.MetaArgs[0].Args[0].Key);
        Assert.Equal("alpine", f.MetaArgs[0].Args[0].Value);
        Assert.Null(f.MetaArgs[1].Args[0].Value);
        Assert.Equal("${BASE}:${V}", f.Stages[0].From.Image);
        Assert.IsType<ArgInstruction>(f.Stages[0].Instructions[0]);
    }

    [Fact]
    public void Only_arg_may_precede_from()
    {
        var e = Fails("# comment\nRUN echo\nFROM a\n");
        Assert.Equal(2, e.Position.Line);
        Assert.Contains("only ARG may come before FROM", e.Message);
    }

    [Fact]
    public void No_from_at_all() => Assert.Contains("no FROM", Fails("ARG X\n").Message);

    [Fact]
    public void Unknown_instruction_names_line_and_column()
    {
        var e = Fails("FROM a\n\n   FOO bar\n");
        Assert.Equal(3, e.Position.Line);
        Assert.Equal(4, e.Position.Column);
        Assert.Equal("Containerfile:3:4: unknown instruction: FOO", e.Message);
    }

    [Fact]
    public void Run_shell_and_exec_forms()
    {
        var shell = Assert.IsType<RunInstruction>(One("RUN echo \"hello world\" && ls"));
        Assert.False(shell.Command.IsExec);
        Assert.Equal("echo \"hello world\" && ls", shell.Command.Shell);
        Assert.Equal(["/bin/sh", "-c", "echo \"hello world\" && ls"], shell.Command.Argv(["/bin/sh", "-c"]));
        var exec = Assert.IsType<RunInstruction>(One("RUN [\"/bin/echo\", \"a b\"]"));
        Assert.Equal(["/bin/echo", "a b"], exec.Command.Exec);
        Assert.Equal(["/bin/echo", "a b"], exec.Command.Argv(["/bin/sh", "-c"]));
    }

    [Fact]
    public void Malformed_json_is_shell_form_as_docker_does()
    {
        var run = Assert.IsType<RunInstruction>(One("RUN [\"echo\", 1]"));
        Assert.False(run.Command.IsExec);
        var run2 = Assert.IsType<RunInstruction>(One("RUN [ \"echo\" "));
        Assert.False(run2.Command.IsExec);
    }

    [Fact]
    public void Line_continuations_join_lines_and_skip_comments()
    {
        var f = P("FROM a\nRUN echo one \\\n  two \\\n# a comment inside\n  three\nRUN next\n");
        var run = Assert.IsType<RunInstruction>(f.Stages[0].Instructions[0]);
        Assert.Equal("echo one   two   three", run.Command.Shell);
        Assert.Equal(2, run.Pos.Line);
        Assert.Equal(6, f.Stages[0].Instructions[1].Pos.Line);
    }

    [Fact]
    public void Continuation_with_trailing_blanks_after_the_escape()
    {
        var run = Assert.IsType<RunInstruction>(One("RUN a \\   \n b"));
        Assert.Equal("a  b", run.Command.Shell);
    }

    [Fact]
    public void Continuation_at_end_of_file()
    {
        var run = Assert.IsType<RunInstruction>(P("FROM a\nRUN x \\").Stages[0].Instructions[0]);
        Assert.Equal("x", run.Command.Shell!.Trim());
    }

    [Fact]
    public void Escaped_escape_at_end_is_not_a_continuation()
    {
        var f = P("FROM a\nRUN echo \\\\\nRUN b\n");
        Assert.Equal(2, f.Stages[0].Instructions.Count);
    }

    [Fact]
    public void Empty_lines_inside_a_continuation_warn()
    {
        var f = P("FROM a\nRUN a \\\n\n  b\n");
        Assert.Equal("a   b", ((RunInstruction)f.Stages[0].Instructions[0]).Command.Shell);
        Assert.Contains(f.Warnings, w => w.Contains("empty continuation line"));
    }

    [Fact]
    public void Escape_directive_backtick()
    {
        var f = P("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\nCOPY a\\b c\\\n");
        Assert.Equal('`', f.Escape);
        Assert.Equal("dir c:\\   && echo", ((RunInstruction)f.Stages[0].Instructions[0]).Command.Shell);
        Assert.Equal(["a\\b"], ((CopyInstruction)f.Stages[0].Instructions[1]).Sources);
    }

    [Fact]
    public void Directives_only_at_the_top()
    {
        var f = P("# comment\n# escape=`\nFROM a\nRUN x \\\n y\n");
        Assert.Equal('\\', f.Escape);
        Assert.Single(f.Stages[0].Instructions);
    }

    [Fact]
    public void Syntax_directive_is_recorded()
    {
        var f = P("# syntax=docker/dockerfile:1.7\n# escape=\\\nFROM a\n");
        Assert.Equal("docker/dockerfile:1.7", f.Syntax);
        Assert.Contains(f.Warnings, w => w.Contains("syntax"));
    }

    [Fact]
    public void Bad_and_duplicate_directives()
    {
        Assert.Contains("invalid escape token", Fails("# escape=x\nFROM a\n").Message);
        Assert.Contains("only one escape", Fails("# escape=`\n# escape=\\\nFROM a\n").Message);
    }

    [Fact]
    public void Byte_order_mark_and_crlf()
    {
        var f = P("\uFEFFFROM a\r\nRUN echo hi\r\n");
        Assert.Equal("echo hi", ((RunInstruction)f.Stages[0].Instructions[0]).Command.Shell);
    }

    [Fact]
    public void Env_forms()
    {
        var kv = Assert.IsType<KeyValueInstruction>(One("ENV A=1 B=\"two words\" C=three\\ four"));
        Assert.Equal(["A", "B", "C"], kv.Pairs.Select(p => p.Key));
        Assert.Equal("\"two words\"", kv.Pairs[1].Value); // quotes go at expansion
        var legacy = Assert.IsType<KeyValueInstruction>(One("ENV NAME some value here"));
        Assert.Equal("NAME", legacy.Pairs[0].Key);
        Assert.Equal("some value here", legacy.Pairs[0].Value);
    }

    [Fact]
    public void Env_errors()
    {
        Assert.Contains("can't find =", Fails("FROM a\nENV A=1 B\n").Message);
        Assert.Contains("names can not be blank", Fails("FROM a\nENV =1\n").Message);
        Assert.Contains("missing value", Fails("FROM a\nENV ONLY\n").Message);
    }

    [Fact]
    public void Labels()
    {
        var kv = Assert.IsType<KeyValueInstruction>(One("LABEL \"com.example.a\"=\"x y\" version=1.0"));
        Assert.Equal(2, kv.Pairs.Count);
        Assert.Equal("LABEL", kv.Keyword);
    }

    [Fact]
    public void Arg_with_several_names_and_defaults()
    {
        var a = Assert.IsType<ArgInstruction>(One("ARG A B=2 C=\"x y\""));
        Assert.Equal(["A", "B", "C"], a.Args.Select(x => x.Key));
        Assert.Null(a.Args[0].Value);
        Assert.Equal("2", a.Args[1].Value);
        Assert.Contains("invalid name", Fails("FROM a\nARG A-B=1\n").Message);
    }

    [Fact]
    public void Copy_flags()
    {
        var c = Assert.IsType<CopyInstruction>(One("COPY --chown=app:app --chmod=0755 --link a b /dst/"));
        Assert.Equal("app:app", c.Chown);
        Assert.Equal("0755", c.Chmod);
        Assert.True(c.Link);
        Assert.Equal(["a", "b"], c.Sources);
        Assert.Equal("/dst/", c.Dest);
        Assert.False(c.IsAdd);
    }

    [Fact]
    public void Copy_json_form_keeps_spaces()
    {
        var c = Assert.IsType<CopyInstruction>(One("COPY [\"my file\", \"/dst dir/\"]"));
        Assert.Equal(["my file"], c.Sources);
        Assert.Equal("/dst dir/", c.Dest);
    }

    [Fact]
    public void Copy_errors()
    {
        Assert.Contains("at least two arguments", Fails("FROM a\nCOPY onlyone\n").Message);
        var e = Fails("FROM a\nCOPY --bogus=1 a b\n");
        Assert.Equal(6, e.Position.Column);
        Assert.Contains("unknown flag: --bogus", e.Message);
        Assert.Contains("needs a value", Fails("FROM a\nCOPY --from= a b\n").Message);
        Assert.Contains("not supported", Fails("FROM a\nCOPY --parents a b\n").Message);
        Assert.Contains("duplicate flag", Fails("FROM a\nCOPY --chown=1 --chown=2 a b\n").Message);
    }

    [Fact]
    public void Add_flags()
    {
        var c = Assert.IsType<CopyInstruction>(One("ADD --chown=1:1 app.tar.gz /opt/"));
        Assert.True(c.IsAdd);
        Assert.Contains("unknown flag: --from", Fails("FROM a\nADD --from=x a b\n").Message);
    }

    [Fact]
    public void Flags_only_where_allowed() =>
        Assert.Contains("takes no flags", Fails("FROM a\nENV --x=1 A=b\n").Message);

    [Fact]
    public void Run_flags()
    {
        var r = Assert.IsType<RunInstruction>(One("RUN --network=none true"));
        Assert.Equal("none", r.Network);
        Assert.Contains("--mount is not supported", Fails("FROM a\nRUN --mount=type=cache,target=/x true\n").Message);
        Assert.Contains("expected default, none or host", Fails("FROM a\nRUN --network=bridge true\n").Message);
    }

    [Fact]
    public void Cmd_and_entrypoint()
    {
        var cmd = Assert.IsType<CommandInstruction>(One("CMD [\"nginx\", \"-g\", \"daemon off;\"]"));
        Assert.Equal(["nginx", "-g", "daemon off;"], cmd.Command.Exec);
        var ep = Assert.IsType<CommandInstruction>(One("ENTRYPOINT exec top -b"));
        Assert.Equal(["/bin/sh", "-c", "exec top -b"], ep.Command.Argv(["/bin/sh", "-c"]));
        Assert.Contains("CMD requires", Fails("FROM a\nCMD\n").Message);
    }

    [Fact]
    public void Simple_value_instructions()
    {
        Assert.Equal("/app", Assert.IsType<ValueInstruction>(One("WORKDIR /app")).Value);
        Assert.Equal("app:app", Assert.IsType<ValueInstruction>(One("USER app:app")).Value);
        Assert.Equal("SIGTERM", Assert.IsType<ValueInstruction>(One("STOPSIGNAL SIGTERM")).Value);
        Assert.Contains("exactly one argument", Fails("FROM a\nUSER a b\n").Message);
        Assert.Contains("exactly one argument", Fails("FROM a\nWORKDIR\n").Message);
    }

    [Fact]
    public void Maintainer_is_deprecated_but_works()
    {
        var f = P("FROM a\nMAINTAINER Jane <jane@example.com>\n");
        Assert.Equal("Jane <jane@example.com>", ((ValueInstruction)f.Stages[0].Instructions[0]).Value);
        Assert.Contains(f.Warnings, w => w.Contains("MAINTAINER is deprecated"));
    }

    [Fact]
    public void Expose_and_volume()
    {
        Assert.Equal(["80", "443/tcp", "53/udp"], Assert.IsType<ListInstruction>(One("EXPOSE 80 443/tcp 53/udp")).Items);
        var v = Assert.IsType<ListInstruction>(One("VOLUME [\"/data\", \"/var/log\"]"));
        Assert.True(v.Literal);
        Assert.Equal(["/data", "/var/log"], v.Items);
        var v2 = Assert.IsType<ListInstruction>(One("VOLUME /a /b"));
        Assert.False(v2.Literal);
        Assert.Equal(["/a", "/b"], v2.Items);
        Assert.Contains("empty string", Fails("FROM a\nVOLUME [\"\"]\n").Message);
    }

    [Fact]
    public void Shell_must_be_json()
    {
        Assert.Equal(["/bin/bash", "-eo", "pipefail", "-c"], Assert.IsType<ShellInstruction>(One("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]")).Shell);
        Assert.Contains("JSON form", Fails("FROM a\nSHELL /bin/bash -c\n").Message);
    }

    [Fact]
    public void Healthcheck_forms()
    {
        var h = Assert.IsType<HealthcheckInstruction>(One("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 CMD curl -f http://localhost/ || exit 1"));
        Assert.Equal(["CMD-SHELL", "curl -f http://localhost/ || exit 1"], h.Test);
        Assert.Equal(TimeSpan.FromSeconds(30), h.Interval);
        Assert.Equal(TimeSpan.FromSeconds(90), h.Timeout);
        Assert.Equal(TimeSpan.FromMilliseconds(500), h.StartPeriod);
        Assert.Equal(3, h.Retries);
        var exec = Assert.IsType<HealthcheckInstruction>(One("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]"));
        Assert.Equal(["CMD", "/bin/check", "-q"], exec.Test);
        Assert.Equal(["NONE"], Assert.IsType<HealthcheckInstruction>(One("HEALTHCHECK NONE")).Test);
    }

    [Fact]
    public void Healthcheck_errors()
    {
        Assert.Contains("not a duration", Fails("FROM a\nHEALTHCHECK --interval=5 CMD true\n").Message);
        Assert.Contains("not a number", Fails("FROM a\nHEALTHCHECK --retries=x CMD true\n").Message);
        Assert.Contains("takes no options", Fails("FROM a\nHEALTHCHECK --retries=1 NONE\n").Message);
        Assert.Contains("unknown type", Fails("FROM a\nHEALTHCHECK RUN true\n").Message);
        Assert.Contains("requires a command", Fails("FROM a\nHEALTHCHECK CMD\n").Message);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("1s", 1000)]
    [InlineData("1m30s", 90000)]
    [InlineData("1.5s", 1500)]
    [InlineData("2h", 7200000)]
    [InlineData("250ms", 250)]
    public void Go_durations(string s, long ms)
    {
        Assert.True(Parser.TryParseDuration(s, out TimeSpan t));
        Assert.Equal(ms, (long)t.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("s")]
    [InlineData("1d")]
    public void Not_go_durations(string s) => Assert.False(Parser.TryParseDuration(s, out _));

    [Fact]
    public void Onbuild_triggers_parse_their_instruction()
    {
        var o = Assert.IsType<OnbuildInstruction>(One("ONBUILD COPY --chown=1 . /app/src"));
        Assert.Equal("COPY --chown=1 . /app/src", o.Trigger);
        var inner = Assert.IsType<CopyInstruction>(o.Parsed);
        Assert.Equal("1", inner.Chown);
        Assert.Contains("ONBUILD ONBUILD is not allowed", Fails("FROM a\nONBUILD ONBUILD RUN x\n").Message);
        Assert.Contains("isn't allowed as an ONBUILD trigger", Fails("FROM a\nONBUILD FROM b\n").Message);
        Assert.Contains("unknown instruction", Fails("FROM a\nONBUILD NOPE x\n").Message);
    }

    [Fact]
    public void Heredoc_run()
    {
        var f = P("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nRUN after\n");
        var run = Assert.IsType<RunInstruction>(f.Stages[0].Instructions[0]);
        Assert.Single(run.Heredocs);
        Assert.Equal("echo one\necho two\n", run.Heredocs[0].Content);
        Assert.True(run.Heredocs[0].Expand);
        Assert.Equal("after", ((RunInstruction)f.Stages[0].Instructions[1]).Command.Shell);
        Assert.Equal(6, f.Stages[0].Instructions[1].Pos.Line);
    }

    [Fact]
    public void Heredoc_quoted_strip_tabs_and_several()
    {
        var f = P("FROM a\nRUN cat <<-'A' > /x && cat <<\"B\" > /y\n\tone $X\n\tA\ntwo\nB\n");
        var run = Assert.IsType<RunInstruction>(f.Stages[0].Instructions[0]);
        Assert.Equal(2, run.Heredocs.Count);
        Assert.Equal("one $X\n", run.Heredocs[0].Content);
        Assert.False(run.Heredocs[0].Expand);
        Assert.True(run.Heredocs[0].StripTabs);
        Assert.Equal("two\n", run.Heredocs[1].Content);
    }

    [Fact]
    public void Heredoc_copy_and_unterminated()
    {
        var c = Assert.IsType<CopyInstruction>(P("FROM a\nCOPY <<EOF /etc/motd\nhello\nEOF\n").Stages[0].Instructions[0]);
        Assert.Equal(["<<EOF"], c.Sources);
        Assert.Equal("hello\n", c.Heredocs[0].Content);
        Assert.Contains("not terminated", Fails("FROM a\nRUN <<EOF\nno end\n").Message);
    }

    [Fact]
    public void Shift_operators_are_not_heredocs()
    {
        var run = Assert.IsType<RunInstruction>(One("RUN echo $((1<<2))"));
        Assert.Empty(run.Heredocs);
    }

    [Fact]
    public void Comments_and_blank_lines_anywhere()
    {
        var f = P("# top\n\nFROM a\n   # indented comment\n\nRUN x # not a comment\n");
        Assert.Equal("x # not a comment", ((RunInstruction)f.Stages[0].Instructions[0]).Command.Shell);
    }

    [Fact]
    public void Text_is_normalised_for_history()
    {
        var f = P("FROM a\nrun   echo hi\n");
        Assert.Equal("RUN   echo hi", f.Stages[0].Instructions[0].Text);
    }

    [Fact]
    public void Column_of_a_flag_on_a_continued_line()
    {
        var e = Fails("FROM a\nCOPY \\\n   --nope=1 a b\n");
        Assert.Equal(3, e.Position.Line);
        Assert.Equal(4, e.Position.Column);
    }

    [Fact]
    public void Split_raw_keeps_quotes_and_escapes()
    {
        Assert.Equal(["a", "\"b c\"", "'d e'", "f\\ g"], Parser.SplitRaw("a \"b c\" 'd e' f\\ g", '\\'));
    }
}
