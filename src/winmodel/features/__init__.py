"""What was knowable about a deal on a day, and the features the model sees."""
