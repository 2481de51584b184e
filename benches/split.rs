//! Script splitting benchmark (`cargo bench --bench split`): a 1 MiB script
//! of everything psql's lexer distinguishes (plain statements, strings with
//! `;` inside, `E''` strings, dollar-quoted function bodies, nested
//! comments, `BEGIN ATOMIC ... END`, meta-commands, `:var` interpolation,
//! empty queries) cut by `console::split` as a run does: once whole for the
//! statement count (`split_with`), and once statement by statement with the
//! session's `standard_conforming_strings` (`Lexer::next_item`).
//! Prints the median and p90 of 50 runs of each (target: ≤ 10 ms for 1 MiB).

use std::time::Instant;

use pglab::console::split::{Lexer, split_with};

/// One block of the script: each form at least once.
const BLOCK: &str = "\
create table if not exists tasks (id bigint generated always as identity primary key, title text not null, done boolean default false);
insert into tasks (title) values ('buy milk; and eggs'), ('it''s done'), (E'tab\\there; \\'quoted\\'');
select t.id, t.title /* a comment; with a semicolon /* nested */ still comment */ from tasks t where t.title like '%;%';
-- a line comment; with a semicolon
create function touch() returns trigger language plpgsql as $body$
begin
  new.updated_at := now(); -- ; inside the body
  return new;
end;
$body$;
create function add_one(i int) returns int language sql
begin atomic
  select i + 1;
end;
\\set n 5
select :n + 1 as six, :'n' as text_n;
;
/* only a comment */ ;
do $$ begin raise notice 'done; really'; end $$;
\\x auto
select array[1, 2, 3], '{\"a\": \"b;c\"}'::jsonb, $tag$ dollar ; quoted $tag$;
";

fn median_and_p90(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 9 / 10])
}

fn main() {
    let mut script = String::with_capacity((1 << 20) + BLOCK.len());
    while script.len() < 1 << 20 {
        script.push_str(BLOCK);
    }
    let items = split_with(&script, true);
    let per_block = split_with(BLOCK, true).len();
    let blocks = script.len() / BLOCK.len();
    assert_eq!(items.len(), per_block * blocks, "every block cut alike");

    let mut whole = Vec::new();
    let mut stepwise = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let n = split_with(&script, true).len();
        whole.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, items.len());

        let t = Instant::now();
        let mut lexer = Lexer::new(&script);
        let mut m = 0;
        while lexer.next_item(true).is_some() {
            m += 1;
        }
        stepwise.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(m, items.len());
    }
    let (w50, w90) = median_and_p90(whole);
    let (s50, s90) = median_and_p90(stepwise);
    println!(
        "script: {:.2} MiB, {} items ({} per block of {} bytes)",
        script.len() as f64 / (1 << 20) as f64,
        items.len(),
        per_block,
        BLOCK.len()
    );
    println!("{:<52} {:>9} {:>9}", "measure", "median", "p90");
    println!(
        "{:<52} {:>6.2} ms {:>6.2} ms",
        "split_with, 1 MiB (target <= 10 ms)", w50, w90
    );
    println!(
        "{:<52} {:>6.2} ms {:>6.2} ms",
        "Lexer::next_item statement by statement, 1 MiB", s50, s90
    );
}
