"""A question: solved when the answer says what meta.toml's answer_contains asks for and no file changed."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import answer, require, tree_clean

require(answer().strip() != "", "there is no answer")
require(tree_clean(), "files changed, but the task was a question")
