"""The thin ROS 2 layer shared by every softmaint node package."""
