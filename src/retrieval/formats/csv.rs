//! CSV files as one Markdown table: the first row is its header. The separator is told from the first
//! line (a comma, a semicolon as spreadsheets in many locales write, or a tab).

use std::fmt::Write as _;

use super::FormatError;

pub fn to_markdown(text: &str) -> Result<String, FormatError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator(text))
        .from_reader(text.as_bytes());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| FormatError::Unreadable(format!("the CSV file is malformed: {error}")))?;
        let cells: Vec<String> = record.iter().map(cell).collect();
        if cells.iter().any(|cell| !cell.is_empty()) {
            rows.push(cells);
        }
    }
    let Some(width) = rows.iter().map(Vec::len).max() else {
        return Ok(String::new());
    };
    let mut markdown = String::with_capacity(text.len() + text.len() / 4);
    for (index, row) in rows.iter().enumerate() {
        markdown.push('|');
        for column in 0..width {
            let _ = write!(markdown, " {} |", row.get(column).map_or("", String::as_str));
        }
        markdown.push('\n');
        if index == 0 {
            markdown.push('|');
            markdown.push_str(&" --- |".repeat(width));
            markdown.push('\n');
        }
    }
    Ok(markdown)
}

/// The separator the first line uses most: `,`, `;` or a tab (quoted text counted too: a guess, which a
/// header row rarely fools).
fn separator(text: &str) -> u8 {
    let first_line = text.lines().next().unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&candidate| first_line.bytes().filter(|&byte| byte == candidate).count())
        .unwrap_or(b',')
}

/// A cell as Markdown table text: one line, pipes escaped.
fn cell(value: &str) -> String {
    value.trim().replace('|', "\\|").replace("\r\n", "<br>").replace(['\n', '\r'], "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_a_table_under_the_first_row() {
        let table = to_markdown("hive,weight kg\nAurora,41.5\n\"Bor|ealis\",\"38,2\"\nshort\n").unwrap();
        assert_eq!(
            table,
            "| hive | weight kg |\n| --- | --- |\n| Aurora | 41.5 |\n| Bor\\|ealis | 38,2 |\n| short |  |\n"
        );
        assert_eq!(to_markdown("a;b\n1;2\n").unwrap(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
        assert_eq!(
            to_markdown("a\tb\n\"multi\nline\"\t2\n").unwrap(),
            "| a | b |\n| --- | --- |\n| multi<br>line | 2 |\n"
        );
        assert_eq!(to_markdown("").unwrap(), "");
    }
}
