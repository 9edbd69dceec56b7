from setuptools import find_packages, setup

package_name = 'softmaint_bag'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='softmaint maintainers',
    maintainer_email='maintainers@softmaint.dev',
    description='Bag player and recorder for machines without rosbag2; offline bag evaluation.',
    license='Apache-2.0',
    entry_points={'console_scripts': [
        'softmaint-play = softmaint_bag.player_node:main',
        'softmaint-record = softmaint_bag.recorder_node:main',
        'softmaint-evaluate-bag = softmaint_bag.evaluate_cli:main',
        'softmaint-bag-bench = softmaint_bag.bench:main',
    ]},
)
